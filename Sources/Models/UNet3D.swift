import Torch

/// The reference notebook's 3D U-Net, unchanged: four encoder blocks of
/// (Conv3d-BN-ReLU)×2 with max-pooling, a bottleneck, four transposed-conv
/// up-steps with skip concatenation, global average pooling and a linear
/// layer to 14 outputs. With base 16 it has 5,648,078 parameters.
///
/// Parameter names equal the PyTorch `state_dict` keys (`enc1.0.weight`,
/// `enc1.1.running_mean`, …, `classifier.bias`), so weights move both ways.
public final class UNet3D {
    /// One `conv_block`: an `nn.Sequential` of Conv-BN-ReLU-Conv-BN-ReLU
    /// (indices 0, 1, 3, 4; the ReLUs at 2 and 5 have no parameters).
    final class ConvBlock {
        let conv1: Conv3d, bn1: BatchNorm3d, conv2: Conv3d, bn2: BatchNorm3d

        init(_ store: ParameterStore, _ name: String, _ inChannels: Int, _ outChannels: Int) throws {
            conv1 = try Conv3d(store, "\(name).0", inChannels, outChannels, kernel: 3, padding: 1)
            bn1 = try BatchNorm3d(store, "\(name).1", outChannels)
            conv2 = try Conv3d(store, "\(name).3", outChannels, outChannels, kernel: 3, padding: 1)
            bn2 = try BatchNorm3d(store, "\(name).4", outChannels)
        }

        func callAsFunction(_ x: Tensor) throws -> Tensor {
            let a = try bn1(conv1(x))
            try a.relu_()  // nn.ReLU(inplace=True)
            let b = try bn2(conv2(a))
            try b.relu_()
            return b
        }
    }

    public let store: ParameterStore
    public let baseFilters: Int
    public let classCount: Int
    let enc1, enc2, enc3, enc4, bottleneck: ConvBlock
    let upconv4, upconv3, upconv2, upconv1: ConvTranspose3d
    let dec4, dec3, dec2, dec1: ConvBlock
    let classifier: Linear

    /// Builds the network with PyTorch's default initialisation, drawing from
    /// libtorch's generator (seed it with `Torch.manualSeed`).
    public init(inChannels: Int = 1, baseFilters f: Int = 16, classCount: Int = 14, device: Device = .cpu) throws {
        let s = ParameterStore(device: device)
        store = s
        baseFilters = f
        self.classCount = classCount
        // Registration order is the PyTorch module order, hence state_dict order.
        enc1 = try ConvBlock(s, "enc1", inChannels, f)
        enc2 = try ConvBlock(s, "enc2", f, f * 2)
        enc3 = try ConvBlock(s, "enc3", f * 2, f * 4)
        enc4 = try ConvBlock(s, "enc4", f * 4, f * 8)
        bottleneck = try ConvBlock(s, "bottleneck", f * 8, f * 16)
        upconv4 = try ConvTranspose3d(s, "upconv4", f * 16, f * 8, kernel: 2, stride: 2)
        dec4 = try ConvBlock(s, "dec4", f * 16, f * 8)
        upconv3 = try ConvTranspose3d(s, "upconv3", f * 8, f * 4, kernel: 2, stride: 2)
        dec3 = try ConvBlock(s, "dec3", f * 8, f * 4)
        upconv2 = try ConvTranspose3d(s, "upconv2", f * 4, f * 2, kernel: 2, stride: 2)
        dec2 = try ConvBlock(s, "dec2", f * 4, f * 2)
        upconv1 = try ConvTranspose3d(s, "upconv1", f * 2, f, kernel: 2, stride: 2)
        dec1 = try ConvBlock(s, "dec1", f * 2, f)
        classifier = try Linear(s, "classifier", f, classCount)
    }

    /// Pre-sigmoid outputs [N, 14]. Spatial sizes must be divisible by 16.
    public func logits(_ x: Tensor) throws -> Tensor {  // x: [N, 1, D, H, W]
        let shape = x.shape
        guard shape.count == 5, shape[2...].allSatisfy({ $0 % 16 == 0 && $0 > 0 }) else {
            throw TorchError.invalidArgument("UNet3D expects [N, C, D, H, W] with D, H, W divisible by 16, got \(shape)")
        }
        let pool = { (t: Tensor) in try t.maxPool3d(kernel: (2, 2, 2)) }
        let e1 = try enc1(x)                                      // [N, f, D, H, W]
        let e2 = try enc2(pool(e1))                               // [N, 2f, D/2, …]
        let e3 = try enc3(pool(e2))                               // [N, 4f, D/4, …]
        let e4 = try enc4(pool(e3))                               // [N, 8f, D/8, …]
        let b = try bottleneck(pool(e4))                          // [N, 16f, D/16, …]
        let d4 = try dec4(Tensor.cat([upconv4(b), e4], dim: 1))   // [N, 8f, D/8, …]
        let d3 = try dec3(Tensor.cat([upconv3(d4), e3], dim: 1))  // [N, 4f, D/4, …]
        let d2 = try dec2(Tensor.cat([upconv2(d3), e2], dim: 1))  // [N, 2f, D/2, …]
        let d1 = try dec1(Tensor.cat([upconv1(d2), e1], dim: 1))  // [N, f, D, H, W]
        let pooled = try d1.adaptiveAvgPool3d((1, 1, 1)).flatten(startDim: 1)  // [N, f]
        return try classifier(pooled)                             // [N, 14]
    }

    /// Probabilities [N, 14], as the notebook's `forward` (sigmoid included).
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try logits(x).sigmoid()
    }
}

extension UNet3D {
    /// The same network for inference only, with each batch norm folded into the convolution before it
    /// (eval-mode BN is a per-channel affine map: w′ = w·γ/√(σ²+ε), b′ = (b − μ)·γ/√(σ²+ε) + β) and, on
    /// the CPU, activations in channels-last layout, where oneDNN's 3D convolutions are fastest. Outputs
    /// equal the eval-mode network's up to float rounding; weights are a snapshot taken now.
    public func foldedForInference() throws -> FoldedUNet3D { try FoldedUNet3D(self) }
}

public final class FoldedUNet3D {
    struct Block {
        let w1, b1, w2, b2: Tensor

        init(_ block: UNet3D.ConvBlock, channelsLast: Bool) throws {
            (w1, b1) = try Self.fold(block.conv1, block.bn1, channelsLast)
            (w2, b2) = try Self.fold(block.conv2, block.bn2, channelsLast)
        }

        static func fold(_ conv: Conv3d, _ bn: BatchNorm3d, _ channelsLast: Bool) throws -> (Tensor, Tensor) {
            let scale = try bn.weight.tensor * (bn.runningVar.tensor + bn.eps).rsqrt()
            let weight = try (conv.weight.tensor * scale.reshape([-1, 1, 1, 1, 1])).detach()
            let bias = try ((conv.bias?.tensor ?? Tensor.zeros([scale.shape[0]], device: scale.device)) - bn.runningMean.tensor) * scale
                + bn.bias.tensor
            // Weights in the activations' layout: otherwise oneDNN reorders them on every call.
            return (channelsLast ? try weight.contiguous(.channelsLast3d) : weight, try bias.detach())
        }

        func callAsFunction(_ x: Tensor) throws -> Tensor {
            let a = try x.conv3d(weight: w1, bias: b1, padding: (1, 1, 1))
            try a.relu_()
            let b = try a.conv3d(weight: w2, bias: b2, padding: (1, 1, 1))
            try b.relu_()
            return b
        }
    }

    /// A transposed convolution (kernel 2, stride 2) with its weights in the activations' layout.
    struct Up {
        let weight: Tensor, bias: Tensor?
        init(_ layer: ConvTranspose3d, channelsLast: Bool) throws {
            let w = try layer.weight.tensor.detach()
            weight = channelsLast ? try w.contiguous(.channelsLast3d) : w
            bias = try layer.bias?.tensor.detach()
        }
        func callAsFunction(_ x: Tensor) throws -> Tensor { try x.convTranspose3d(weight: weight, bias: bias, stride: (2, 2, 2)) }
    }

    let enc1, enc2, enc3, enc4, bottleneck, dec4, dec3, dec2, dec1: Block
    let upconv4, upconv3, upconv2, upconv1: Up
    let classifier: Linear
    let channelsLast: Bool

    init(_ net: UNet3D) throws {
        let cl = net.store.device == .cpu
        channelsLast = cl
        (enc1, enc2, enc3, enc4) = (try Block(net.enc1, channelsLast: cl), try Block(net.enc2, channelsLast: cl),
                                    try Block(net.enc3, channelsLast: cl), try Block(net.enc4, channelsLast: cl))
        bottleneck = try Block(net.bottleneck, channelsLast: cl)
        (dec4, dec3, dec2, dec1) = (try Block(net.dec4, channelsLast: cl), try Block(net.dec3, channelsLast: cl),
                                    try Block(net.dec2, channelsLast: cl), try Block(net.dec1, channelsLast: cl))
        (upconv4, upconv3, upconv2, upconv1) = (try Up(net.upconv4, channelsLast: cl), try Up(net.upconv3, channelsLast: cl),
                                                try Up(net.upconv2, channelsLast: cl), try Up(net.upconv1, channelsLast: cl))
        classifier = net.classifier
    }

    /// Pre-sigmoid outputs [N, 14] (no autograd is recorded).
    public func logits(_ input: Tensor) throws -> Tensor {
        let shape = input.shape
        guard shape.count == 5, shape[2...].allSatisfy({ $0 % 16 == 0 && $0 > 0 }) else {
            throw TorchError.invalidArgument("UNet3D expects [N, C, D, H, W] with D, H, W divisible by 16, got \(shape)")
        }
        return try Torch.withNoGrad {
            let x = channelsLast ? try input.contiguous(.channelsLast3d) : input
            let pool = { (t: Tensor) in try t.maxPool3d(kernel: (2, 2, 2)) }
            let e1 = try enc1(x)
            let e2 = try enc2(pool(e1))
            let e3 = try enc3(pool(e2))
            let e4 = try enc4(pool(e3))
            let b = try bottleneck(pool(e4))
            let d4 = try dec4(Tensor.cat([upconv4(b), e4], dim: 1))
            let d3 = try dec3(Tensor.cat([upconv3(d4), e3], dim: 1))
            let d2 = try dec2(Tensor.cat([upconv2(d3), e2], dim: 1))
            let d1 = try dec1(Tensor.cat([upconv1(d2), e1], dim: 1))
            return try classifier(d1.adaptiveAvgPool3d((1, 1, 1)).flatten(startDim: 1))
        }
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor { try logits(x).sigmoid() }
}
