import CWillisEngine

/// Element type of a tensor.
public enum DType: Int32, CaseIterable, Sendable, CustomStringConvertible {
    case uint8 = 0, int64 = 1, float32 = 2, float16 = 3, bfloat16 = 4, bool = 5, int32 = 6,
        float64 = 7, int16 = 8, int8 = 9

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .uint8, .bool, .int8: return 1
        case .float16, .bfloat16, .int16: return 2
        case .float32, .int32: return 4
        case .int64, .float64: return 8
        }
    }

    public var isFloatingPoint: Bool {
        switch self {
        case .float32, .float16, .bfloat16, .float64: return true
        default: return false
        }
    }

    public var description: String {
        switch self {
        case .uint8: return "u8"
        case .int64: return "i64"
        case .float32: return "f32"
        case .float16: return "f16"
        case .bfloat16: return "bf16"
        case .bool: return "bool"
        case .int32: return "i32"
        case .float64: return "f64"
        case .int16: return "i16"
        case .int8: return "i8"
        }
    }
}

/// Swift scalar types that map one-to-one onto a tensor element type.
public protocol TensorElement {
    static var dtype: DType { get }
}
extension Float: TensorElement { public static var dtype: DType { .float32 } }
extension Double: TensorElement { public static var dtype: DType { .float64 } }
extension Int64: TensorElement { public static var dtype: DType { .int64 } }
extension Int32: TensorElement { public static var dtype: DType { .int32 } }
extension Int16: TensorElement { public static var dtype: DType { .int16 } }
extension UInt8: TensorElement { public static var dtype: DType { .uint8 } }
extension Int8: TensorElement { public static var dtype: DType { .int8 } }
extension Bool: TensorElement { public static var dtype: DType { .bool } }
#if arch(arm64)
extension Float16: TensorElement { public static var dtype: DType { .float16 } }
#endif

/// Where a tensor lives.
public enum Device: Equatable, Hashable, Sendable, CustomStringConvertible {
    case cpu
    case cuda(Int)

    /// Parses "cpu", "cuda" or "cuda:N".
    public init(parsing text: String) throws {
        if text == "cpu" { self = .cpu; return }
        if text == "cuda" { self = .cuda(0); return }
        if text.hasPrefix("cuda:"), let n = Int(text.dropFirst(5)), n >= 0 { self = .cuda(n); return }
        throw TorchError.invalidArgument("unknown device '\(text)': expected cpu, cuda or cuda:N")
    }

    public var description: String {
        switch self {
        case .cpu: return "cpu"
        case let .cuda(i): return "cuda:\(i)"
        }
    }

    var code: (Int32, Int32) {
        switch self {
        case .cpu: return (Int32(WL_CPU), 0)
        case let .cuda(i): return (Int32(WL_CUDA), Int32(i))
        }
    }
}
