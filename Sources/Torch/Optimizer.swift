import CWillisEngine
import Foundation

/// A libtorch optimizer over a fixed list of parameter tensors.
///
/// The learning rate is set from Swift (by a `LearningRateSchedule`); the
/// update rule and its state (moments, step counts) live in libtorch, so the
/// arithmetic equals PyTorch's.
public final class Optimizer {
    public enum Kind: Sendable, Equatable {
        /// `torch.optim.Adam`.
        case adam(beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8, weightDecay: Double = 0)
        /// `torch.optim.AdamW` (decoupled weight decay).
        case adamW(beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8, weightDecay: Double = 0.01)
        /// `torch.optim.SGD`, with Nesterov momentum when `nesterov` is true.
        case sgd(momentum: Double = 0.9, nesterov: Bool = true, weightDecay: Double = 0)
    }

    let handle: OpaquePointer
    /// The tensors this optimizer updates, kept alive with it.
    public let parameters: [Tensor]
    public let kind: Kind

    public init(_ kind: Kind, parameters: [Tensor], learningRate: Double) throws {
        guard !parameters.isEmpty else { throw TorchError.invalidArgument("optimizer needs at least one parameter") }
        guard learningRate >= 0, learningRate.isFinite else {
            throw TorchError.invalidArgument("learning rate must be a finite number >= 0, got \(learningRate)")
        }
        var options = wl_optimizer_options(lr: learningRate, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0,
                                           momentum: 0, dampening: 0, nesterov: 0, amsgrad: 0)
        let code: wl_optimizer_kind
        switch kind {
        case let .adam(b1, b2, eps, wd):
            (options.beta1, options.beta2, options.eps, options.weight_decay) = (b1, b2, eps, wd)
            code = WL_ADAM
        case let .adamW(b1, b2, eps, wd):
            (options.beta1, options.beta2, options.eps, options.weight_decay) = (b1, b2, eps, wd)
            code = WL_ADAMW
        case let .sgd(momentum, nesterov, wd):
            (options.momentum, options.nesterov, options.weight_decay) = (momentum, nesterov ? 1 : 0, wd)
            code = WL_SGD
        }
        let engine = try Engine.shared()
        let handles: [OpaquePointer?] = parameters.map { $0.handle }
        var out: OpaquePointer?
        try engine.check(engine.api.pointee.optimizer_create(Int32(code.rawValue), handles, Int32(handles.count), &options, &out),
                         "optimizer_create")
        guard let out else { throw TorchError.operation(op: "optimizer_create", message: "engine returned no optimizer") }
        self.handle = out
        self.parameters = parameters
        self.kind = kind
    }

    deinit { Engine.current.api.pointee.optimizer_free(handle) }

    /// Applies one update from the parameters' current gradients.
    public func step() throws {
        try Engine.current.check(Engine.current.api.pointee.optimizer_step(handle), "optimizer step")
    }

    /// Clears gradients (to None, as PyTorch >= 2.0 does by default).
    public func zeroGrad() throws {
        try Engine.current.check(Engine.current.api.pointee.optimizer_zero_grad(handle, 1), "optimizer zero_grad")
    }

    public var learningRate: Double {
        get {
            var lr = 0.0
            _ = Engine.current.api.pointee.optimizer_get_lr(handle, &lr)
            return lr
        }
    }

    public func setLearningRate(_ lr: Double) throws {
        guard lr >= 0, lr.isFinite else { throw TorchError.invalidArgument("learning rate must be finite and >= 0, got \(lr)") }
        try Engine.current.check(Engine.current.api.pointee.optimizer_set_lr(handle, lr), "optimizer set_lr")
    }

    /// The optimizer's state (moments, step counts) as opaque bytes.
    public func stateData() throws -> Data {
        var bytes: UnsafeMutableRawPointer?
        var length: Int64 = 0
        let api = Engine.current.api
        try Engine.current.check(api.pointee.optimizer_state_save(handle, &bytes, &length), "optimizer state save")
        guard let bytes else { return Data() }
        defer { api.pointee.buffer_free(bytes) }
        return Data(bytes: bytes, count: Int(length))
    }

    /// Restores state written by `stateData()` for the same parameter list.
    public func loadState(_ data: Data) throws {
        try data.withUnsafeBytes { raw in
            try Engine.current.check(Engine.current.api.pointee.optimizer_state_load(handle, raw.baseAddress, Int64(raw.count)),
                                     "optimizer state load")
        }
    }
}
