import Foundation

/// One named tensor of a model: a trainable parameter or a buffer (running
/// statistics). Layers hold the box, so moving the model to another device
/// swaps the tensor inside without touching the layers.
public final class Parameter {
    public enum Kind: Sendable { case parameter, buffer }
    /// PyTorch `state_dict` key, e.g. `enc1.0.weight`.
    public let name: String
    public let kind: Kind
    public internal(set) var tensor: Tensor

    init(name: String, kind: Kind, tensor: Tensor) {
        self.name = name
        self.kind = kind
        self.tensor = tensor
    }
}

/// The named parameters and buffers of a model, in registration order, which
/// is PyTorch's `state_dict` order when layers register as their modules do.
public final class ParameterStore {
    public private(set) var entries: [Parameter] = []
    public private(set) var device: Device
    /// Training mode (`model.train()`) versus evaluation (`model.eval()`).
    public var isTraining = true

    public init(device: Device = .cpu) {
        self.device = device
    }

    /// Registers a tensor under `name`. Parameters get `requires_grad`.
    public func register(_ name: String, _ tensor: Tensor, kind: Parameter.Kind = .parameter) throws -> Parameter {
        guard !entries.contains(where: { $0.name == name }) else {
            throw TorchError.invalidArgument("parameter '\(name)' registered twice")
        }
        let placed = tensor.device == device ? tensor : try tensor.to(device)
        if kind == .parameter { try placed.setRequiresGrad(true) }
        let p = Parameter(name: name, kind: kind, tensor: placed)
        entries.append(p)
        return p
    }

    /// Trainable tensors in registration order (`model.parameters()`).
    public var parameters: [Tensor] { entries.filter { $0.kind == .parameter }.map(\.tensor) }

    /// Every parameter and buffer by name (`model.state_dict()`).
    public var namedTensors: [(String, Tensor)] { entries.map { ($0.name, $0.tensor) } }

    /// Number of trainable scalars.
    /// Stores every 5-D tensor (convolution weights) in `format`, in place: the parameters stay the same
    /// objects, so optimizers built on them carry on. Channels-last 3D lets oneDNN and cuDNN pick their
    /// fastest convolutions.
    public func convert(to format: Tensor.MemoryFormat) throws {
        for p in entries where p.tensor.shape.count == 5 {
            let converted = try p.tensor.detach().contiguous(format)
            try Engine.current.check(Engine.current.api.pointee.tensor_set_data(p.tensor.handle, converted.handle), "set_data \(p.name)")
        }
    }

    public var parameterCount: Int { entries.filter { $0.kind == .parameter }.reduce(0) { $0 + $1.tensor.count } }

    /// Moves every tensor to `device`.
    public func move(to device: Device) throws {
        guard device != self.device else { return }
        for p in entries {
            let moved = try p.tensor.detach().to(device)
            if p.kind == .parameter { try moved.setRequiresGrad(true) }
            p.tensor = moved
        }
        self.device = device
    }

    /// Copies values from `tensors` into the store, as `load_state_dict(strict=True)`:
    /// every key must be present with the same shape and no extra keys may exist.
    /// All mismatches are reported together; nothing is copied unless all match.
    public func load(_ tensors: [String: Tensor]) throws {
        try load(names: Set(tensors.keys), shape: { tensors[$0]?.shape }, value: { name in
            guard let t = tensors[name] else { throw TorchError.invalidArgument("no tensor \(name)") }
            return t
        })
    }

    /// Loads a safetensors file saved from this model or from PyTorch.
    public func load(safetensors file: SafeTensorsFile) throws {
        try load(names: Set(file.names), shape: { file.entry($0)?.shape }, value: { try file.tensor($0) })
    }

    public func load(safetensorsAt path: String) throws {
        try load(safetensors: SafeTensorsFile(path: path))
    }

    private func load(names: Set<String>, shape: (String) -> [Int]?, value: (String) throws -> Tensor) throws {
        let own = Set(entries.map(\.name))
        let missing = entries.map(\.name).filter { !names.contains($0) }
        let unexpected = names.subtracting(own).sorted()
        var mismatched: [String] = []
        for p in entries {
            if let s = shape(p.name), s != p.tensor.shape {
                mismatched.append("\(p.name): checkpoint \(s), model \(p.tensor.shape)")
            }
        }
        guard missing.isEmpty, unexpected.isEmpty, mismatched.isEmpty else {
            throw TorchError.stateDictMismatch(missing: missing, unexpected: unexpected, shapeMismatches: mismatched)
        }
        for p in entries { try p.tensor.copy(from: value(p.name)) }
    }

    /// Starts this store from another network's weights (fine-tuning, or a wider input): every entry
    /// must be in `file` under its name, with its shape — except that a weight stored with one input
    /// channel (dim 1) where this store has k is spread evenly over the k (each gets 1/k of it), so
    /// that an input sampled k ways (e.g. `Detector`'s subdivided image) starts as the one-channel
    /// network on the samples' mean. Entries of `file` this store lacks are ignored.
    /// All mismatches are reported together; nothing is copied unless all match. Returns what was
    /// spread or ignored, as notes.
    public func initialise(from file: SafeTensorsFile) throws -> [String] {
        let names = Set(file.names)
        let missing = entries.map(\.name).filter { !names.contains($0) }
        var mismatched: [String] = [], spread: [String: Int] = [:]  // name → input channels it is spread over
        for p in entries {
            guard let s = file.entry(p.name)?.shape, s != p.tensor.shape else { continue }
            let own = p.tensor.shape
            if s.count == own.count, s.count >= 2, s[1] == 1, own[1] > 1, s[0] == own[0], s[2...] == own[2...] {
                spread[p.name] = own[1]
            } else {
                mismatched.append("\(p.name): file \(s), model \(own)")
            }
        }
        guard missing.isEmpty, mismatched.isEmpty else {
            throw TorchError.stateDictMismatch(missing: missing, unexpected: [], shapeMismatches: mismatched)
        }
        try Torch.withNoGrad {
            for p in entries {
                let stored = try file.tensor(p.name).to(p.tensor.dtype)
                if let k = spread[p.name] {
                    try p.tensor.copy(from: stored.expand(p.tensor.shape) * (1.0 / Double(k)))
                } else {
                    try p.tensor.copy(from: stored)
                }
            }
        }
        let ignored = names.subtracting(entries.map(\.name)).filter { !$0.hasPrefix("__") }
        return spread.sorted { $0.key < $1.key }.map { "\($0.key): its one input channel spread over \($0.value)" }
            + (ignored.isEmpty ? [] : ["\(ignored.count) tensors of the file not in this network ignored (\(ignored.sorted().prefix(3).joined(separator: ", ")))"])
    }

    /// Copies every entry's value from `other`, a store of the same network (same names, shapes and order):
    /// where a moving average of `other`'s weights starts.
    public func copyValues(from other: ParameterStore) throws {
        try checkSameNetwork(other)
        try Torch.withNoGrad { for (a, p) in zip(entries, other.entries) { try a.tensor.copy(from: p.tensor) } }
    }

    /// One step of an exponential moving average of `other`'s weights (the same network): each parameter
    /// becomes `decay` · itself + (1 − `decay`) · `other`'s. Buffers (running statistics, counters) are
    /// copied: they are averages already, and a counter cannot be blended.
    public func moveAverage(towards other: ParameterStore, decay: Double) throws {
        try checkSameNetwork(other)
        try Torch.withNoGrad {
            for (a, p) in zip(entries, other.entries) {
                try a.tensor.copy(from: a.kind == .parameter ? a.tensor * decay + p.tensor * (1 - decay) : p.tensor)
            }
        }
    }

    private func checkSameNetwork(_ other: ParameterStore) throws {
        guard entries.map(\.name) == other.entries.map(\.name), zip(entries, other.entries).allSatisfy({ $0.tensor.shape == $1.tensor.shape }) else {
            throw TorchError.invalidArgument("averaging weights needs two stores of the same network: \(entries.count) and \(other.entries.count) entries")
        }
    }

    /// Writes every parameter and buffer to a safetensors file, atomically.
    public func save(to path: String, metadata: [String: String] = [:]) throws {
        try SafeTensors.write(namedTensors, metadata: metadata, to: path)
    }
}
