/// The element type of decoded pixel samples, as pydicom's `pixel_array` names it.
public enum SampleType: String, Sendable, Equatable {
    case uint8, int8, uint16, int16, uint32, int32, float32, float64

    public var byteSize: Int {
        switch self {
        case .uint8, .int8: return 1
        case .uint16, .int16: return 2
        case .uint32, .int32, .float32: return 4
        case .float64: return 8
        }
    }

    static func integer(bits: Int, signed: Bool) -> SampleType? {
        switch (bits, signed) {
        case (8, false): return .uint8
        case (8, true): return .int8
        case (16, false): return .uint16
        case (16, true): return .int16
        case (32, false): return .uint32
        case (32, true): return .int32
        default: return nil
        }
    }
}

/// Decoded pixel samples: little-endian, C order, shaped like pydicom's
/// `pixel_array`: [frames,] rows, columns[, samples] (frames only when > 1,
/// samples only when > 1).
public struct PixelArray: Sendable {
    public var frames: Int
    public var rows: Int
    public var columns: Int
    public var samplesPerPixel: Int
    public var type: SampleType
    public var bytes: [UInt8]

    public init(frames: Int, rows: Int, columns: Int, samplesPerPixel: Int, type: SampleType, bytes: [UInt8]) {
        (self.frames, self.rows, self.columns, self.samplesPerPixel, self.type, self.bytes) =
            (frames, rows, columns, samplesPerPixel, type, bytes)
    }

    public var shape: [Int] {
        var s = [rows, columns]
        if frames > 1 { s.insert(frames, at: 0) }
        if samplesPerPixel > 1 { s.append(samplesPerPixel) }
        return s
    }

    public var frameSampleCount: Int { rows * columns * samplesPerPixel }

    /// Writes frame `index` (first sample channel) times `slope` plus `intercept` into `out`.
    public func write(frame index: Int, slope: Float, intercept: Float, into out: UnsafeMutableBufferPointer<Float>) {
        let n = min(rows * columns, out.count)
        let start = index * frameSampleCount
        let step = samplesPerPixel
        bytes.withUnsafeBytes { raw in
            func fill<T: BinaryInteger>(_: T.Type) {
                let p = raw.bindMemory(to: T.self)
                for i in 0..<n { out[i] = Float(p[start + i * step]) * slope + intercept }
            }
            switch type {
            case .uint8: fill(UInt8.self)
            case .int8: fill(Int8.self)
            case .uint16: fill(UInt16.self)
            case .int16: fill(Int16.self)
            case .uint32: fill(UInt32.self)
            case .int32: fill(Int32.self)
            case .float32:
                let p = raw.bindMemory(to: Float.self)
                for i in 0..<n { out[i] = p[start + i * step] * slope + intercept }
            case .float64:
                let p = raw.bindMemory(to: Double.self)
                for i in 0..<n { out[i] = Float(p[start + i * step]) * slope + intercept }
            }
        }
    }

    /// Every sample of every frame as Float, in storage order.
    public func allSamples() -> [Float] {
        var out: [Float] = []
        out.reserveCapacity(frames * frameSampleCount)
        bytes.withUnsafeBytes { raw in
            func add<T: BinaryInteger>(_: T.Type) { out += raw.bindMemory(to: T.self).map { Float($0) } }
            switch type {
            case .uint8: add(UInt8.self)
            case .int8: add(Int8.self)
            case .uint16: add(UInt16.self)
            case .int16: add(Int16.self)
            case .uint32: add(UInt32.self)
            case .int32: add(Int32.self)
            case .float32: out += raw.bindMemory(to: Float.self)
            case .float64: out += raw.bindMemory(to: Double.self).map { Float($0) }
            }
        }
        return out
    }

    /// Frame `index` as Float values (first sample channel only when colour), times `slope` plus `intercept`.
    public func floats(frame index: Int, slope: Float = 1, intercept: Float = 0) -> [Float] {
        [Float](unsafeUninitializedCapacity: rows * columns) { out, initialized in
            write(frame: index, slope: slope, intercept: intercept, into: out)
            initialized = rows * columns
        }
    }
}
