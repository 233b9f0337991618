/// Value representations of the attributes Willis reads, for Implicit VR data
/// sets where the file does not say. Unknown tags are kept as raw bytes (UN),
/// or parsed as a sequence when their value starts with an item tag.
enum DataDictionary {
    static let vrs: [Tag: VR] = [
        .fileMetaGroupLength: .UL, .mediaStorageSOPClassUID: .UI, .transferSyntaxUID: .UI,
        .sopClassUID: .UI, .sopInstanceUID: .UI, .imageType: .CS, .modality: .CS, .manufacturer: .LO,
        .seriesDescription: .LO, .patientName: .PN, .patientID: .LO, .patientBirthDate: .DA, .patientSex: .CS,
        .patientAge: .AS, .sliceThickness: .DS, .spacingBetweenSlices: .DS, .gantryDetectorTilt: .DS,
        .studyInstanceUID: .UI, .seriesInstanceUID: .UI, .seriesNumber: .IS, .instanceNumber: .IS,
        .imagePositionPatient: .DS, .imageOrientationPatient: .DS, .frameOfReferenceUID: .UI,
        .samplesPerPixel: .US, .photometricInterpretation: .CS, .planarConfiguration: .US, .numberOfFrames: .IS,
        .rows: .US, .columns: .US, .pixelSpacing: .DS, .bitsAllocated: .US, .bitsStored: .US, .highBit: .US,
        .pixelRepresentation: .US, .windowCenter: .DS, .windowWidth: .DS, .rescaleIntercept: .DS,
        .rescaleSlope: .DS, .extendedOffsetTable: .OV, .extendedOffsetTableLengths: .OV,
        .floatPixelData: .OF, .doubleFloatPixelData: .OD, .pixelData: .OW,
        .sharedFunctionalGroups: .SQ, .perFrameFunctionalGroups: .SQ, .planePositionSequence: .SQ,
        .planeOrientationSequence: .SQ, .pixelMeasuresSequence: .SQ, .pixelValueTransformationSequence: .SQ,
        .frameContentSequence: .SQ, .echoTime: .DS, .mrEchoSequence: .SQ, .effectiveEchoTime: .FD,
        Tag(0x0008, 0x0005): .CS,  // Specific Character Set
        Tag(0x0008, 0x0020): .DA, Tag(0x0008, 0x0030): .TM,  // Study Date/Time
        Tag(0x0008, 0x1115): .SQ, Tag(0x0008, 0x1140): .SQ, Tag(0x0008, 0x2112): .SQ, Tag(0x0008, 0x9215): .SQ,
        Tag(0x0018, 0x0015): .CS,  // Body Part Examined
        Tag(0x0020, 0x1041): .DS,  // Slice Location
        Tag(0x0028, 0x0034): .IS,  // Pixel Aspect Ratio
        Tag(0x0028, 0x1054): .LO,  // Rescale Type
        Tag(0x0040, 0x0275): .SQ,
    ]

    static func vr(for tag: Tag) -> VR? {
        if tag.element == 0x0000 { return .UL }  // group lengths
        return vrs[tag]
    }
}
