import Foundation

// Layers that register their tensors under PyTorch's names and initialise them
// as PyTorch does (kaiming-uniform with a = sqrt(5), i.e. U(-1/sqrt(fan_in), +)).

func uniform(_ shape: [Int], bound: Double, device: Device) throws -> Tensor {
    try (Tensor.rand(shape, device: device) * (2 * bound)) - bound
}

/// `nn.Conv3d` with cubic kernels.
public final class Conv3d {
    public let weight: Parameter
    public let bias: Parameter?
    public let stride: Triple
    public let padding: Triple

    public init(_ store: ParameterStore, _ name: String, _ inChannels: Int, _ outChannels: Int, kernel: Int,
                stride: Int = 1, padding: Int = 0, bias: Bool = true) throws {
        let fanIn = inChannels * kernel * kernel * kernel
        let bound = 1 / Double(fanIn).squareRoot()
        weight = try store.register("\(name).weight",
                                    uniform([outChannels, inChannels, kernel, kernel, kernel], bound: bound, device: store.device))
        self.bias = bias ? try store.register("\(name).bias", uniform([outChannels], bound: bound, device: store.device)) : nil
        self.stride = (stride, stride, stride)
        self.padding = (padding, padding, padding)
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try x.conv3d(weight: weight.tensor, bias: bias?.tensor, stride: stride, padding: padding)
    }
}

/// `nn.ConvTranspose3d` with cubic kernels.
public final class ConvTranspose3d {
    public let weight: Parameter
    public let bias: Parameter?
    public let stride: Triple

    public init(_ store: ParameterStore, _ name: String, _ inChannels: Int, _ outChannels: Int, kernel: Int,
                stride: Int, bias: Bool = true) throws {
        // PyTorch computes fan-in from weight dim 1, which is out_channels here.
        let fanIn = outChannels * kernel * kernel * kernel
        let bound = 1 / Double(fanIn).squareRoot()
        weight = try store.register("\(name).weight",
                                    uniform([inChannels, outChannels, kernel, kernel, kernel], bound: bound, device: store.device))
        self.bias = bias ? try store.register("\(name).bias", uniform([outChannels], bound: bound, device: store.device)) : nil
        self.stride = (stride, stride, stride)
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try x.convTranspose3d(weight: weight.tensor, bias: bias?.tensor, stride: stride)
    }
}

/// `nn.BatchNorm3d`: affine, tracking running statistics, momentum 0.1.
public final class BatchNorm3d {
    unowned let store: ParameterStore
    public let weight, bias, runningMean, runningVar, batchesTracked: Parameter
    public let momentum: Double
    public let eps: Double

    public init(_ store: ParameterStore, _ name: String, _ channels: Int, momentum: Double = 0.1, eps: Double = 1e-5) throws {
        self.store = store
        let d = store.device
        weight = try store.register("\(name).weight", .ones([channels], device: d))
        bias = try store.register("\(name).bias", .zeros([channels], device: d))
        runningMean = try store.register("\(name).running_mean", .zeros([channels], device: d), kind: .buffer)
        runningVar = try store.register("\(name).running_var", .ones([channels], device: d), kind: .buffer)
        batchesTracked = try store.register("\(name).num_batches_tracked", .zeros([], dtype: .int64, device: d), kind: .buffer)
        self.momentum = momentum
        self.eps = eps
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        if store.isTraining {
            // PyTorch's module counts batches; the functional op does not.
            try batchesTracked.tensor.addInPlace(1)
        }
        return try x.batchNorm(weight: weight.tensor, bias: bias.tensor, runningMean: runningMean.tensor,
                               runningVar: runningVar.tensor, training: store.isTraining, momentum: momentum, eps: eps)
    }
}

/// `nn.InstanceNorm3d(affine: true)` without running statistics (nnU-Net's choice).
public final class InstanceNorm3d {
    public let weight, bias: Parameter
    public let eps: Double

    public init(_ store: ParameterStore, _ name: String, _ channels: Int, eps: Double = 1e-5) throws {
        weight = try store.register("\(name).weight", .ones([channels], device: store.device))
        bias = try store.register("\(name).bias", .zeros([channels], device: store.device))
        self.eps = eps
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try x.instanceNorm(weight: weight.tensor, bias: bias.tensor, eps: eps)
    }
}

/// `nn.Linear`.
public final class Linear {
    public let weight: Parameter
    public let bias: Parameter?

    public init(_ store: ParameterStore, _ name: String, _ inFeatures: Int, _ outFeatures: Int, bias: Bool = true) throws {
        let bound = 1 / Double(inFeatures).squareRoot()
        weight = try store.register("\(name).weight", uniform([outFeatures, inFeatures], bound: bound, device: store.device))
        self.bias = bias ? try store.register("\(name).bias", uniform([outFeatures], bound: bound, device: store.device)) : nil
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try x.linear(weight: weight.tensor, bias: bias?.tensor)
    }
}
