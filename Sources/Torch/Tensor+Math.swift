import CWillisEngine

// Elementwise math, comparisons and reductions. Every op throws on a shape,
// dtype or device libtorch refuses, naming the op and the shapes involved.

extension Tensor {
    func unary(_ op: wl_unary_op, _ name: String) throws -> Tensor {
        try Tensor.make("\(name) of \(shape)") { api, out in api.pointee.unary(Int32(op.rawValue), handle, out) }
    }

    func unaryInPlace(_ op: wl_unary_op, _ name: String) throws {
        try Engine.current.check(Engine.current.api.pointee.unary_(Int32(op.rawValue), handle), "\(name)_ of \(shape)")
    }

    func binary(_ op: wl_binary_op, _ name: String, _ other: Tensor) throws -> Tensor {
        try Tensor.make("\(name) of \(shape) and \(other.shape)") { api, out in
            api.pointee.binary(Int32(op.rawValue), handle, other.handle, out)
        }
    }

    func binary(_ op: wl_binary_op, _ name: String, _ scalar: Double) throws -> Tensor {
        try Tensor.make("\(name) of \(shape) and scalar") { api, out in
            api.pointee.binary_scalar(Int32(op.rawValue), handle, scalar, out)
        }
    }

    public func neg() throws -> Tensor { try unary(WL_NEG, "neg") }
    public func exp() throws -> Tensor { try unary(WL_EXP, "exp") }
    public func log() throws -> Tensor { try unary(WL_LOG, "log") }
    public func sqrt() throws -> Tensor { try unary(WL_SQRT, "sqrt") }
    public func rsqrt() throws -> Tensor { try unary(WL_RSQRT, "rsqrt") }
    public func abs() throws -> Tensor { try unary(WL_ABS, "abs") }
    public func relu() throws -> Tensor { try unary(WL_RELU, "relu") }
    public func sigmoid() throws -> Tensor { try unary(WL_SIGMOID, "sigmoid") }
    public func tanh() throws -> Tensor { try unary(WL_TANH, "tanh") }
    public func gelu(approximateTanh: Bool = false) throws -> Tensor {
        try unary(approximateTanh ? WL_GELU_TANH : WL_GELU, "gelu")
    }
    public func sign() throws -> Tensor { try unary(WL_SIGN, "sign") }
    public func square() throws -> Tensor { try unary(WL_SQUARE, "square") }
    public func floor() throws -> Tensor { try unary(WL_FLOOR, "floor") }
    public func round() throws -> Tensor { try unary(WL_ROUND, "round") }
    public func logSigmoid() throws -> Tensor { try unary(WL_LOGSIGMOID, "log_sigmoid") }

    /// In-place ReLU, as `nn.ReLU(inplace=True)`: saves one activation's memory.
    public func relu_() throws { try unaryInPlace(WL_RELU, "relu") }
    public func sigmoid_() throws { try unaryInPlace(WL_SIGMOID, "sigmoid") }

    /// Adds `value` to every element in place, outside autograd (for counters and buffers).
    public func addInPlace(_ value: Double) throws {
        try Engine.current.check(Engine.current.api.pointee.binary_scalar_(Int32(WL_ADD.rawValue), handle, value), "add_ of \(shape)")
    }

    /// Multiplies every element by `value` in place, outside autograd.
    public func multiplyInPlace(_ value: Double) throws {
        try Engine.current.check(Engine.current.api.pointee.binary_scalar_(Int32(WL_MUL.rawValue), handle, value), "mul_ of \(shape)")
    }

    public func leakyRelu(slope: Double = 0.01) throws -> Tensor {
        try Tensor.make("leaky_relu of \(shape)") { api, out in api.pointee.leaky_relu(handle, slope, out) }
    }

    public func clamp(min: Double? = nil, max: Double? = nil) throws -> Tensor {
        try Tensor.make("clamp of \(shape)") { api, out in
            api.pointee.clamp(handle, min ?? 0, max ?? 0, min == nil ? 0 : 1, max == nil ? 0 : 1, out)
        }
    }

    public func pow(_ exponent: Double) throws -> Tensor { try binary(WL_POW, "pow", exponent) }
    public func pow(_ exponent: Tensor) throws -> Tensor { try binary(WL_POW, "pow", exponent) }
    public func maximum(_ other: Tensor) throws -> Tensor { try binary(WL_MAXIMUM, "maximum", other) }
    public func minimum(_ other: Tensor) throws -> Tensor { try binary(WL_MINIMUM, "minimum", other) }

    public func eq(_ other: Tensor) throws -> Tensor { try binary(WL_EQ, "eq", other) }
    public func ne(_ other: Tensor) throws -> Tensor { try binary(WL_NE, "ne", other) }
    public func lt(_ other: Tensor) throws -> Tensor { try binary(WL_LT, "lt", other) }
    public func le(_ other: Tensor) throws -> Tensor { try binary(WL_LE, "le", other) }
    public func gt(_ other: Tensor) throws -> Tensor { try binary(WL_GT, "gt", other) }
    public func ge(_ other: Tensor) throws -> Tensor { try binary(WL_GE, "ge", other) }
    public func eq(_ value: Double) throws -> Tensor { try binary(WL_EQ, "eq", value) }
    public func lt(_ value: Double) throws -> Tensor { try binary(WL_LT, "lt", value) }
    public func gt(_ value: Double) throws -> Tensor { try binary(WL_GT, "gt", value) }
    public func ge(_ value: Double) throws -> Tensor { try binary(WL_GE, "ge", value) }
    public func le(_ value: Double) throws -> Tensor { try binary(WL_LE, "le", value) }

    /// Elementwise `condition ? a : b`, with broadcasting.
    public static func `where`(_ condition: Tensor, _ a: Tensor, _ b: Tensor) throws -> Tensor {
        try Tensor.make("where") { api, out in api.pointee.where(condition.handle, a.handle, b.handle, out) }
    }

    public static func + (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(WL_ADD, "add", b) }
    public static func - (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(WL_SUB, "sub", b) }
    public static func * (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(WL_MUL, "mul", b) }
    public static func / (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(WL_DIV, "div", b) }
    public static func + (a: Tensor, b: Double) throws -> Tensor { try a.binary(WL_ADD, "add", b) }
    public static func - (a: Tensor, b: Double) throws -> Tensor { try a.binary(WL_SUB, "sub", b) }
    public static func * (a: Tensor, b: Double) throws -> Tensor { try a.binary(WL_MUL, "mul", b) }
    public static func / (a: Tensor, b: Double) throws -> Tensor { try a.binary(WL_DIV, "div", b) }
    public static func + (a: Double, b: Tensor) throws -> Tensor { try b.binary(WL_ADD, "add", a) }
    public static func * (a: Double, b: Tensor) throws -> Tensor { try b.binary(WL_MUL, "mul", a) }
    public static func - (a: Double, b: Tensor) throws -> Tensor { try b.neg().binary(WL_ADD, "add", a) }
    public static prefix func - (a: Tensor) throws -> Tensor { try a.neg() }

    // MARK: - Reductions

    func reduce(_ op: wl_reduce_op, _ name: String, _ dims: [Int], _ keepDims: Bool) throws -> Tensor {
        let d = dims.map(Int64.init)
        return try Tensor.make("\(name) over \(dims) of \(shape)") { api, out in
            api.pointee.reduce(Int32(op.rawValue), handle, d, Int32(d.count), keepDims ? 1 : 0, out)
        }
    }

    /// Sum over `dims` (all dimensions when empty).
    public func sum(dims: [Int] = [], keepDims: Bool = false) throws -> Tensor { try reduce(WL_SUM, "sum", dims, keepDims) }
    public func mean(dims: [Int] = [], keepDims: Bool = false) throws -> Tensor { try reduce(WL_MEAN, "mean", dims, keepDims) }
    public func max(dims: [Int] = [], keepDims: Bool = false) throws -> Tensor { try reduce(WL_AMAX, "amax", dims, keepDims) }
    public func min(dims: [Int] = [], keepDims: Bool = false) throws -> Tensor { try reduce(WL_AMIN, "amin", dims, keepDims) }
    /// Unbiased standard deviation, as `torch.std`.
    public func std(dims: [Int] = [], keepDims: Bool = false) throws -> Tensor { try reduce(WL_STD, "std", dims, keepDims) }
    public func variance(dims: [Int] = [], keepDims: Bool = false) throws -> Tensor { try reduce(WL_VAR, "var", dims, keepDims) }
    /// Index of the largest value along `dim`, or in the flattened tensor.
    public func argmax(dim: Int? = nil, keepDims: Bool = false) throws -> Tensor {
        try reduce(WL_ARGMAX, "argmax", dim.map { [$0] } ?? [], keepDims)
    }
    public func argmin(dim: Int? = nil, keepDims: Bool = false) throws -> Tensor {
        try reduce(WL_ARGMIN, "argmin", dim.map { [$0] } ?? [], keepDims)
    }

    public func matmul(_ other: Tensor) throws -> Tensor {
        try Tensor.make("matmul of \(shape) and \(other.shape)") { api, out in api.pointee.matmul(handle, other.handle, out) }
    }
}
