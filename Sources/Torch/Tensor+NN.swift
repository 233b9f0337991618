import CWillisEngine

/// How a loss reduces over elements.
public enum Reduction: Int32, Sendable {
    case none = 0, mean = 1, sum = 2
}

/// Interpolation modes for `Tensor.interpolate`.
public enum InterpolationMode: Int32, Sendable {
    case nearest = 0, trilinear = 1
}

/// Three per-axis sizes (depth, height, width).
public typealias Triple = (Int, Int, Int)

@inline(__always)
func triple(_ t: Triple) -> [Int64] { [Int64(t.0), Int64(t.1), Int64(t.2)] }

// Layers as functions over [N, C, D, H, W] tensors, matching torch.nn.functional.
extension Tensor {
    public func linear(weight: Tensor, bias: Tensor?) throws -> Tensor {
        try Tensor.make("linear of \(shape) with weight \(weight.shape)") { api, out in
            api.pointee.linear(handle, weight.handle, bias?.handle, out)
        }
    }

    public func conv3d(weight: Tensor, bias: Tensor?, stride: Triple = (1, 1, 1), padding: Triple = (0, 0, 0),
                       dilation: Triple = (1, 1, 1), groups: Int = 1) throws -> Tensor {
        try Tensor.make("conv3d of \(shape) with weight \(weight.shape)") { api, out in
            api.pointee.conv3d(handle, weight.handle, bias?.handle, triple(stride), triple(padding), triple(dilation),
                               Int64(groups), out)
        }
    }

    public func convTranspose3d(weight: Tensor, bias: Tensor?, stride: Triple = (1, 1, 1), padding: Triple = (0, 0, 0),
                                outputPadding: Triple = (0, 0, 0), groups: Int = 1,
                                dilation: Triple = (1, 1, 1)) throws -> Tensor {
        try Tensor.make("conv_transpose3d of \(shape) with weight \(weight.shape)") { api, out in
            api.pointee.conv_transpose3d(handle, weight.handle, bias?.handle, triple(stride), triple(padding),
                                         triple(outputPadding), Int64(groups), triple(dilation), out)
        }
    }

    /// Batch normalisation; in training mode the running statistics are updated in place.
    public func batchNorm(weight: Tensor?, bias: Tensor?, runningMean: Tensor?, runningVar: Tensor?,
                          training: Bool, momentum: Double = 0.1, eps: Double = 1e-5) throws -> Tensor {
        try Tensor.make("batch_norm of \(shape)") { api, out in
            api.pointee.batch_norm(handle, weight?.handle, bias?.handle, runningMean?.handle, runningVar?.handle,
                                   training ? 1 : 0, momentum, eps, out)
        }
    }

    public func instanceNorm(weight: Tensor?, bias: Tensor?, runningMean: Tensor? = nil, runningVar: Tensor? = nil,
                             useInputStats: Bool = true, momentum: Double = 0.1, eps: Double = 1e-5) throws -> Tensor {
        try Tensor.make("instance_norm of \(shape)") { api, out in
            api.pointee.instance_norm(handle, weight?.handle, bias?.handle, runningMean?.handle, runningVar?.handle,
                                      useInputStats ? 1 : 0, momentum, eps, out)
        }
    }

    public func maxPool3d(kernel: Triple, stride: Triple? = nil, padding: Triple = (0, 0, 0),
                          ceilMode: Bool = false) throws -> Tensor {
        try Tensor.make("max_pool3d of \(shape)") { api, out in
            api.pointee.max_pool3d(handle, triple(kernel), triple(stride ?? kernel), triple(padding), ceilMode ? 1 : 0, out)
        }
    }

    public func avgPool3d(kernel: Triple, stride: Triple? = nil, padding: Triple = (0, 0, 0)) throws -> Tensor {
        try Tensor.make("avg_pool3d of \(shape)") { api, out in
            api.pointee.avg_pool3d(handle, triple(kernel), triple(stride ?? kernel), triple(padding), out)
        }
    }

    public func adaptiveAvgPool3d(_ size: Triple) throws -> Tensor {
        try Tensor.make("adaptive_avg_pool3d of \(shape)") { api, out in
            api.pointee.adaptive_avg_pool3d(handle, triple(size), out)
        }
    }

    public func adaptiveMaxPool3d(_ size: Triple) throws -> Tensor {
        try Tensor.make("adaptive_max_pool3d of \(shape)") { api, out in
            api.pointee.adaptive_max_pool3d(handle, triple(size), out)
        }
    }

    /// Resizes the spatial dimensions of an [N, C, D, H, W] tensor.
    public func interpolate(size: [Int], mode: InterpolationMode = .trilinear, alignCorners: Bool = false) throws -> Tensor {
        let s = size.map(Int64.init)
        return try Tensor.make("interpolate \(shape) to \(size)") { api, out in
            api.pointee.interpolate(handle, s, Int32(s.count), mode.rawValue, alignCorners ? 1 : 0, out)
        }
    }

    public func dropout(p: Double, training: Bool) throws -> Tensor {
        try Tensor.make("dropout") { api, out in api.pointee.dropout(handle, p, training ? 1 : 0, out) }
    }

    // MARK: - Losses

    /// Numerically stable sigmoid + binary cross-entropy on logits.
    public func binaryCrossEntropyWithLogits(target: Tensor, weight: Tensor? = nil, posWeight: Tensor? = nil,
                                             reduction: Reduction = .mean) throws -> Tensor {
        try Tensor.make("binary_cross_entropy_with_logits") { api, out in
            api.pointee.bce_with_logits(handle, target.handle, weight?.handle, posWeight?.handle, reduction.rawValue, out)
        }
    }

    /// Binary cross-entropy on probabilities (`nn.BCELoss`), as the reference notebook uses.
    public func binaryCrossEntropy(target: Tensor, weight: Tensor? = nil, reduction: Reduction = .mean) throws -> Tensor {
        try Tensor.make("binary_cross_entropy of \(shape) and \(target.shape)") { api, out in
            api.pointee.bce(handle, target.handle, weight?.handle, reduction.rawValue, out)
        }
    }

    public func mseLoss(target: Tensor, reduction: Reduction = .mean) throws -> Tensor {
        try Tensor.make("mse_loss of \(shape) and \(target.shape)") { api, out in
            api.pointee.mse(handle, target.handle, reduction.rawValue, out)
        }
    }

    /// Cross-entropy of logits [N, C, ...] against class indices [N, ...] (int64).
    public func crossEntropy(target: Tensor, weight: Tensor? = nil, ignoreIndex: Int = -100,
                             reduction: Reduction = .mean) throws -> Tensor {
        try Tensor.make("cross_entropy of \(shape) and \(target.shape)") { api, out in
            api.pointee.cross_entropy(handle, target.handle, weight?.handle, Int64(ignoreIndex), reduction.rawValue, out)
        }
    }
}
