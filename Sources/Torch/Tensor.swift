import CWillisEngine
import Foundation

/// An n-dimensional array owned by libtorch.
///
/// Exactly one `Tensor` owns each engine handle; the storage is released when
/// the last Swift reference goes away (`deinit`), not at some later collection.
/// Shapes are row-major and, for volumes, `[N, C, D, H, W]`.
public final class Tensor: CustomStringConvertible {
    let handle: OpaquePointer

    init(handle: OpaquePointer) { self.handle = handle }

    deinit { Engine.current.api.pointee.tensor_free(handle) }

    // MARK: - Making tensors

    /// Runs an engine call that produces one tensor, turning a failure into a throw.
    @inline(__always)
    static func make(_ op: @autoclosure () -> String,
                     _ body: (UnsafePointer<wl_api>, UnsafeMutablePointer<OpaquePointer?>) -> wl_status) throws -> Tensor {
        Tensor(handle: try makeHandle(op(), body))
    }

    @inline(__always)
    static func makeHandle(_ op: @autoclosure () -> String,
                           _ body: (UnsafePointer<wl_api>, UnsafeMutablePointer<OpaquePointer?>) -> wl_status) throws -> OpaquePointer {
        let engine = try Engine.shared()
        var out: OpaquePointer?
        try engine.check(body(engine.api, &out), op())
        guard let out else { throw TorchError.operation(op: op(), message: "engine returned no tensor") }
        return out
    }

    static func validated(_ shape: [Int]) throws -> [Int64] {
        guard shape.allSatisfy({ $0 >= 0 }) else {
            throw TorchError.invalidArgument("shape \(shape) has a negative size")
        }
        return shape.map(Int64.init)
    }

    static func elementCount(_ shape: [Int]) throws -> Int {
        var n = 1
        for s in shape {
            let (p, overflow) = n.multipliedReportingOverflow(by: s)
            guard !overflow else { throw TorchError.invalidArgument("shape \(shape) is too large") }
            n = p
        }
        return n
    }

    /// A tensor holding a copy of `values`, laid out row-major in `shape`.
    public convenience init<T: TensorElement>(_ values: [T], shape: [Int], device: Device = .cpu) throws {
        let dims = try Tensor.validated(shape)
        guard try Tensor.elementCount(shape) == values.count else {
            throw TorchError.invalidArgument("\(values.count) values do not fill shape \(shape)")
        }
        var handle = try values.withUnsafeBytes { raw in
            try Tensor.makeHandle("tensor_from_data") { api, out in
                api.pointee.tensor_from_data(raw.baseAddress, dims, Int32(dims.count), T.dtype.rawValue, 1, nil, nil, out)
            }
        }
        if device != .cpu {
            let cpu = Tensor(handle: handle)
            let (type, index) = device.code
            handle = try Tensor.makeHandle("to(\(device))") { api, out in
                api.pointee.tensor_to(cpu.handle, T.dtype.rawValue, type, index, out)
            }
        }
        self.init(handle: handle)
    }

    /// A 1-D tensor holding a copy of `values`.
    public convenience init<T: TensorElement>(_ values: [T], device: Device = .cpu) throws {
        try self.init(values, shape: [values.count], device: device)
    }

    /// A tensor that copies `bytes`, interpreted as `dtype` in `shape`.
    public static func copying(bytes: UnsafeRawBufferPointer, shape: [Int], dtype: DType) throws -> Tensor {
        let dims = try validated(shape)
        let needed = try elementCount(shape) * dtype.byteSize
        guard bytes.count == needed else {
            throw TorchError.invalidArgument("\(bytes.count) bytes do not fill \(dtype) shape \(shape) (\(needed) bytes)")
        }
        return try make("tensor_from_data") { api, out in
            api.pointee.tensor_from_data(bytes.baseAddress, dims, Int32(dims.count), dtype.rawValue, 1, nil, nil, out)
        }
    }

    /// A CPU tensor over memory the caller owns, without copying. `release` runs
    /// once libtorch no longer uses the memory (it may outlive this Tensor if
    /// views of it exist).
    public static func wrapping(_ pointer: UnsafeMutableRawPointer, shape: [Int], dtype: DType,
                                release: @escaping () -> Void) throws -> Tensor {
        let dims = try validated(shape)
        let box = Unmanaged.passRetained(ReleaseBox(release))
        do {
            return try make("tensor_from_data") { api, out in
                api.pointee.tensor_from_data(pointer, dims, Int32(dims.count), dtype.rawValue, 0, { context in
                    guard let context else { return }
                    let box = Unmanaged<ReleaseBox>.fromOpaque(context).takeRetainedValue()
                    box.release()
                }, box.toOpaque(), out)
            }
        } catch {
            box.release()
            throw error
        }
    }

    /// Moves `buffer` into a tensor without copying; the buffer is deallocated
    /// when libtorch lets go of it.
    public static func adopting<T: TensorElement>(_ buffer: UnsafeMutableBufferPointer<T>, shape: [Int]) throws -> Tensor {
        guard try elementCount(shape) == buffer.count, let base = buffer.baseAddress else {
            throw TorchError.invalidArgument("\(buffer.count) values do not fill shape \(shape)")
        }
        return try wrapping(UnsafeMutableRawPointer(base), shape: shape, dtype: T.dtype) { buffer.deallocate() }
    }

    public static func full(_ shape: [Int], value: Double, dtype: DType = .float32, device: Device = .cpu) throws -> Tensor {
        let dims = try validated(shape)
        let (type, index) = device.code
        return try make("full") { api, out in
            api.pointee.tensor_full(dims, Int32(dims.count), dtype.rawValue, type, index, value, out)
        }
    }

    public static func zeros(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu) throws -> Tensor {
        try full(shape, value: 0, dtype: dtype, device: device)
    }

    public static func ones(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu) throws -> Tensor {
        try full(shape, value: 1, dtype: dtype, device: device)
    }

    /// Uniform samples in [0, 1) from libtorch's generator (see `Torch.manualSeed`).
    public static func rand(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu) throws -> Tensor {
        try random(Int32(WL_UNIFORM.rawValue), shape, dtype, device)
    }

    /// Standard normal samples from libtorch's generator.
    public static func randn(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu) throws -> Tensor {
        try random(Int32(WL_NORMAL.rawValue), shape, dtype, device)
    }

    private static func random(_ kind: Int32, _ shape: [Int], _ dtype: DType, _ device: Device) throws -> Tensor {
        let dims = try validated(shape)
        let (type, index) = device.code
        return try make("random") { api, out in
            api.pointee.tensor_random(kind, dims, Int32(dims.count), dtype.rawValue, type, index, out)
        }
    }

    /// 0, 1, …, n-1.
    public static func arange(_ n: Int, dtype: DType = .int64, device: Device = .cpu) throws -> Tensor {
        let (type, index) = device.code
        return try make("arange") { api, out in
            api.pointee.tensor_arange(Int64(n), dtype.rawValue, type, index, out)
        }
    }

    // MARK: - Metadata

    public var rank: Int { Int(Engine.current.api.pointee.tensor_ndim(handle)) }

    public var shape: [Int] {
        let n = rank
        var sizes = [Int64](repeating: 0, count: n)
        _ = Engine.current.api.pointee.tensor_shape(handle, &sizes, Int32(n))
        return sizes.map(Int.init)
    }

    public var count: Int { shape.reduce(1, *) }

    public var dtype: DType {
        DType(rawValue: Engine.current.api.pointee.tensor_dtype(handle)) ?? .float32
    }

    public var device: Device {
        var type: Int32 = 0
        var index: Int32 = 0
        _ = Engine.current.api.pointee.tensor_device(handle, &type, &index)
        return type == Int32(WL_CUDA) ? .cuda(Int(index)) : .cpu
    }

    public var isContiguous: Bool { Engine.current.api.pointee.tensor_is_contiguous(handle) != 0 }

    public var description: String { "Tensor(\(shape), \(dtype), \(device))" }

    // MARK: - Reading values

    /// The single value of a one-element tensor.
    public func item() throws -> Double {
        var value = 0.0
        try Engine.current.check(Engine.current.api.pointee.tensor_item(handle, &value), "item of \(shape)")
        return value
    }

    /// Calls `body` with the tensor's bytes (row-major, on the CPU). No copy is
    /// made when the tensor is already a contiguous CPU tensor.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        let source = (device == .cpu && isContiguous) ? self : try to(.cpu).contiguous()
        var pointer: UnsafeMutableRawPointer?
        try Engine.current.check(Engine.current.api.pointee.tensor_data_ptr(source.handle, &pointer), "data_ptr")
        let bytes = source.count * source.dtype.byteSize
        return try withExtendedLifetime(source) {
            try body(UnsafeRawBufferPointer(start: pointer, count: bytes))
        }
    }

    /// A copy of the values as a Swift array; `T` must match `dtype`.
    public func toArray<T: TensorElement>(of type: T.Type = T.self) throws -> [T] {
        guard dtype == T.dtype else {
            throw TorchError.invalidArgument("toArray(\(T.self)) on a \(dtype) tensor; convert with .to(\(T.dtype)) first")
        }
        return try withUnsafeBytes { raw in Array(raw.bindMemory(to: T.self)) }
    }

    /// The values as Float, converting from any numeric dtype.
    public func floats() throws -> [Float] {
        try (dtype == .float32 ? self : to(.float32)).toArray(of: Float.self)
    }

    // MARK: - Conversion and copies

    public func to(_ device: Device) throws -> Tensor { try to(dtype: dtype, device: device) }
    public func to(_ dtype: DType) throws -> Tensor { try to(dtype: dtype, device: device) }

    public func to(dtype: DType, device: Device) throws -> Tensor {
        let (type, index) = device.code
        return try Tensor.make("to(\(dtype), \(device))") { api, out in
            api.pointee.tensor_to(handle, dtype.rawValue, type, index, out)
        }
    }

    public func contiguous() throws -> Tensor {
        try Tensor.make("contiguous") { api, out in api.pointee.tensor_contiguous(handle, out) }
    }

    public enum MemoryFormat: Int32, Sendable {
        case contiguous = 0, channelsLast = 1, channelsLast3d = 2
    }

    /// The same values stored in `format` (`isContiguous` is then false for the channels-last ones).
    public func contiguous(_ format: MemoryFormat) throws -> Tensor {
        try Tensor.make("contiguous(\(format))") { api, out in api.pointee.tensor_to_memory_format(handle, format.rawValue, out) }
    }

    public func clone() throws -> Tensor {
        try Tensor.make("clone") { api, out in api.pointee.tensor_clone(handle, out) }
    }

    /// The same storage, cut off from the autograd graph.
    public func detach() throws -> Tensor {
        try Tensor.make("detach") { api, out in api.pointee.tensor_detach(handle, out) }
    }

    /// Copies `source` into this tensor in place (broadcasting), outside autograd.
    public func copy(from source: Tensor) throws {
        try Engine.current.check(Engine.current.api.pointee.tensor_copy_(handle, source.handle),
                                 "copy \(source.shape) into \(shape)")
    }

    /// Sets every element to `value` in place, outside autograd.
    public func fill(_ value: Double) throws {
        try Engine.current.check(Engine.current.api.pointee.tensor_fill_(handle, value), "fill")
    }
}

final class ReleaseBox {
    let release: () -> Void
    init(_ release: @escaping () -> Void) { self.release = release }
}
