/// A DICOM attribute tag (group, element).
public struct Tag: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let group: UInt16
    public let element: UInt16

    public init(_ group: UInt16, _ element: UInt16) {
        self.group = group
        self.element = element
    }

    var value: UInt32 { UInt32(group) << 16 | UInt32(element) }
    public static func < (a: Tag, b: Tag) -> Bool { a.value < b.value }
    public var isPrivate: Bool { group & 1 == 1 }
    public var description: String {
        let hex = { (v: UInt16) in String(v, radix: 16, uppercase: true).leftPadded(4) }
        return "(\(hex(group)),\(hex(element)))"
    }

    // Items and delimiters.
    public static let item = Tag(0xFFFE, 0xE000)
    public static let itemDelimitation = Tag(0xFFFE, 0xE00D)
    public static let sequenceDelimitation = Tag(0xFFFE, 0xE0DD)

    // File meta.
    public static let fileMetaGroupLength = Tag(0x0002, 0x0000)
    public static let mediaStorageSOPClassUID = Tag(0x0002, 0x0002)
    public static let transferSyntaxUID = Tag(0x0002, 0x0010)

    // Identity.
    public static let sopClassUID = Tag(0x0008, 0x0016)
    public static let sopInstanceUID = Tag(0x0008, 0x0018)
    public static let imageType = Tag(0x0008, 0x0008)
    public static let modality = Tag(0x0008, 0x0060)
    public static let manufacturer = Tag(0x0008, 0x0070)
    public static let seriesDescription = Tag(0x0008, 0x103E)
    public static let patientName = Tag(0x0010, 0x0010)
    public static let patientID = Tag(0x0010, 0x0020)
    public static let patientBirthDate = Tag(0x0010, 0x0030)
    public static let patientSex = Tag(0x0010, 0x0040)
    public static let patientAge = Tag(0x0010, 0x1010)
    public static let sliceThickness = Tag(0x0018, 0x0050)
    public static let echoTime = Tag(0x0018, 0x0081)
    public static let spacingBetweenSlices = Tag(0x0018, 0x0088)
    public static let gantryDetectorTilt = Tag(0x0018, 0x1120)
    public static let studyInstanceUID = Tag(0x0020, 0x000D)
    public static let seriesInstanceUID = Tag(0x0020, 0x000E)
    public static let seriesNumber = Tag(0x0020, 0x0011)
    public static let instanceNumber = Tag(0x0020, 0x0013)
    public static let imagePositionPatient = Tag(0x0020, 0x0032)
    public static let imageOrientationPatient = Tag(0x0020, 0x0037)
    public static let frameOfReferenceUID = Tag(0x0020, 0x0052)

    // Image pixel module.
    public static let samplesPerPixel = Tag(0x0028, 0x0002)
    public static let photometricInterpretation = Tag(0x0028, 0x0004)
    public static let planarConfiguration = Tag(0x0028, 0x0006)
    public static let numberOfFrames = Tag(0x0028, 0x0008)
    public static let rows = Tag(0x0028, 0x0010)
    public static let columns = Tag(0x0028, 0x0011)
    public static let pixelSpacing = Tag(0x0028, 0x0030)
    public static let bitsAllocated = Tag(0x0028, 0x0100)
    public static let bitsStored = Tag(0x0028, 0x0101)
    public static let highBit = Tag(0x0028, 0x0102)
    public static let pixelRepresentation = Tag(0x0028, 0x0103)
    public static let windowCenter = Tag(0x0028, 0x1050)
    public static let windowWidth = Tag(0x0028, 0x1051)
    public static let rescaleIntercept = Tag(0x0028, 0x1052)
    public static let rescaleSlope = Tag(0x0028, 0x1053)
    public static let extendedOffsetTable = Tag(0x7FE0, 0x0001)
    public static let extendedOffsetTableLengths = Tag(0x7FE0, 0x0002)
    public static let floatPixelData = Tag(0x7FE0, 0x0008)
    public static let doubleFloatPixelData = Tag(0x7FE0, 0x0009)
    public static let pixelData = Tag(0x7FE0, 0x0010)

    // Enhanced multi-frame functional groups.
    public static let sharedFunctionalGroups = Tag(0x5200, 0x9229)
    public static let perFrameFunctionalGroups = Tag(0x5200, 0x9230)
    public static let planePositionSequence = Tag(0x0020, 0x9113)
    public static let planeOrientationSequence = Tag(0x0020, 0x9116)
    public static let pixelMeasuresSequence = Tag(0x0028, 0x9110)
    public static let pixelValueTransformationSequence = Tag(0x0028, 0x9145)
    public static let frameContentSequence = Tag(0x0020, 0x9111)
    public static let mrEchoSequence = Tag(0x0018, 0x9114)
    public static let effectiveEchoTime = Tag(0x0018, 0x9082)
}

extension String {
    func leftPadded(_ width: Int, with pad: Character = "0") -> String {
        count >= width ? self : String(repeating: pad, count: width - count) + self
    }
}
