// Gradients: requires_grad, backward, and the no-grad scope.

extension Tensor {
    public var requiresGrad: Bool { Engine.current.api.pointee.requires_grad(handle) != 0 }

    /// Marks a leaf tensor as one whose gradient autograd should keep.
    @discardableResult
    public func setRequiresGrad(_ on: Bool = true) throws -> Tensor {
        try Engine.current.check(Engine.current.api.pointee.set_requires_grad(handle, on ? 1 : 0), "set_requires_grad")
        return self
    }

    /// The accumulated gradient, or nil if none was computed yet.
    public var grad: Tensor? {
        var out: OpaquePointer?
        guard Engine.current.api.pointee.grad(handle, &out) == 0, let out else { return nil }
        return Tensor(handle: out)
    }

    /// Drops the accumulated gradient (as `param.grad = None`).
    public func zeroGrad() throws {
        try Engine.current.check(Engine.current.api.pointee.zero_grad(handle), "zero_grad")
    }

    /// Back-propagates from this tensor; `gradient` may be omitted for a scalar.
    public func backward(gradient: Tensor? = nil) throws {
        try Engine.current.check(Engine.current.api.pointee.backward(handle, gradient?.handle), "backward from \(shape)")
    }
}

/// Process-wide libtorch settings.
public enum Torch {
    /// Runs `body` with autograd recording off on this thread (`torch.no_grad()`).
    public static func withNoGrad<R>(_ body: () throws -> R) throws -> R {
        try withGradEnabled(false, body)
    }

    public static func withGradEnabled<R>(_ enabled: Bool, _ body: () throws -> R) throws -> R {
        let api = try Engine.shared().api
        let previous = api.pointee.set_grad_enabled(enabled ? 1 : 0)
        defer { _ = api.pointee.set_grad_enabled(previous) }
        return try body()
    }

    /// Seeds libtorch's CPU and CUDA generators.
    public static func manualSeed(_ seed: UInt64) throws {
        let engine = try Engine.shared()
        try engine.check(engine.api.pointee.manual_seed(seed), "manual_seed")
    }

    /// Intra-op thread count of libtorch's CPU kernels.
    public static var threadCount: Int {
        get { (try? Engine.shared()).map { Int($0.api.pointee.get_num_threads()) } ?? 0 }
    }

    public static func setThreadCount(_ n: Int) throws {
        let engine = try Engine.shared()
        try engine.check(engine.api.pointee.set_num_threads(Int32(n)), "set_num_threads(\(n))")
    }

    /// Waits for all queued work on a CUDA device; needed before reading a clock.
    public static func synchronize(_ device: Device) throws {
        guard case let .cuda(index) = device else { return }
        let engine = try Engine.shared()
        try engine.check(engine.api.pointee.cuda_synchronize(Int32(index)), "cuda synchronize")
    }

    /// cuDNN autotuning of convolution algorithms for fixed shapes.
    public static func setCudnnBenchmark(_ on: Bool) throws {
        let engine = try Engine.shared()
        try engine.check(engine.api.pointee.set_cudnn_benchmark(on ? 1 : 0), "cudnn benchmark")
    }

    /// TF32 tensor-core math for float32 matmul and convolution on CUDA.
    public static func setAllowTF32(_ on: Bool) throws {
        let engine = try Engine.shared()
        try engine.check(engine.api.pointee.set_allow_tf32(on ? 1 : 0), "allow tf32")
    }

    /// Runs `body` under automatic mixed precision on `device` (`torch.autocast`).
    public static func withAutocast<R>(_ device: Device, dtype: DType = .bfloat16, _ body: () throws -> R) throws -> R {
        let engine = try Engine.shared()
        let (type, _) = device.code
        try engine.check(engine.api.pointee.autocast_enter(type, dtype.rawValue), "autocast(\(device), \(dtype))")
        defer { _ = engine.api.pointee.autocast_exit(type) }
        return try body()
    }
}
