/// The Image Pixel module of a data set: what the pixel data holds (PS3.3 C.7.6.3).
public struct PixelDescription: Sendable, Equatable {
    public var rows: Int
    public var columns: Int
    public var frames: Int
    public var samplesPerPixel: Int
    public var bitsAllocated: Int
    public var bitsStored: Int
    public var signed: Bool
    /// 0: samples interleaved per pixel; 1: one plane per sample.
    public var planarConfiguration: Int
    public var photometric: String
    /// Float Pixel Data or Double Float Pixel Data instead of integers.
    public var floatingPoint: Bool

    /// Reads and checks the module. Sizes beyond `maxPixelBytes` are refused before anything is allocated.
    public init(_ set: DataSet, file: String, maxPixelBytes: Int) throws {
        func require(_ tag: Tag, _ name: String) throws -> Int {
            guard let v = set.int(tag) else {
                throw DICOMError(.notAnImage("no \(name) \(tag)"), file: file, tag: tag)
            }
            return v
        }
        guard set.contains(.pixelData) || set.contains(.floatPixelData) || set.contains(.doubleFloatPixelData) else {
            let sop = set.string(.sopClassUID) ?? "unknown SOP class"
            throw DICOMError(.notAnImage("no pixel data (SOP class \(sop))"), file: file)
        }
        rows = try require(.rows, "Rows")
        columns = try require(.columns, "Columns")
        frames = max(1, set.int(.numberOfFrames) ?? 1)
        samplesPerPixel = set.int(.samplesPerPixel) ?? 1
        floatingPoint = !set.contains(.pixelData)
        bitsAllocated = set.int(.bitsAllocated) ?? (set.contains(.doubleFloatPixelData) ? 64 : floatingPoint ? 32 : 16)
        bitsStored = set.int(.bitsStored) ?? bitsAllocated
        signed = (set.int(.pixelRepresentation) ?? 0) == 1
        planarConfiguration = set.int(.planarConfiguration) ?? 0
        photometric = set.string(.photometricInterpretation) ?? (samplesPerPixel == 1 ? "MONOCHROME2" : "RGB")
        guard rows > 0, columns > 0, rows <= 65535, columns <= 65535 else {
            throw DICOMError(.malformed("image size \(rows)×\(columns)"), file: file, tag: .rows)
        }
        guard [1, 3, 4].contains(samplesPerPixel) else {
            throw DICOMError(.unsupported("\(samplesPerPixel) samples per pixel"), file: file, tag: .samplesPerPixel)
        }
        guard [8, 16, 32, 64].contains(bitsAllocated) else {
            throw DICOMError(.unsupported("\(bitsAllocated) bits allocated"), file: file, tag: .bitsAllocated)
        }
        guard bitsStored >= 1, bitsStored <= bitsAllocated else {
            throw DICOMError(.malformed("bits stored \(bitsStored) with \(bitsAllocated) allocated"), file: file, tag: .bitsStored)
        }
        guard frames <= 1 << 20 else {
            throw DICOMError(.malformed("\(frames) frames"), file: file, tag: .numberOfFrames)
        }
        let (bytes, overflow) = rows.multipliedReportingOverflow(by: columns * samplesPerPixel * (bitsAllocated / 8))
        let (total, overflow2) = bytes.multipliedReportingOverflow(by: frames)
        guard !overflow, !overflow2, total <= maxPixelBytes else {
            throw DICOMError(.tooLarge(bytes: overflow || overflow2 ? Int.max : total, limit: maxPixelBytes), file: file, tag: .pixelData)
        }
    }

    public var frameBytes: Int { rows * columns * samplesPerPixel * (bitsAllocated / 8) }

    /// Decoded sample type, as pydicom reports it.
    public var sampleType: SampleType {
        if floatingPoint { return bitsAllocated == 64 ? .float64 : .float32 }
        return SampleType.integer(bits: bitsAllocated, signed: signed) ?? .uint16
    }

    public var isColour: Bool { samplesPerPixel > 1 }
}
