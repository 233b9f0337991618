import Foundation
import Torch

/// The detector (the accuracy issue's network): a residual-encoder 3D U-Net with
/// - an **aneurysm head**: one heatmap logit per voxel, trained on Gaussians around localizer points,
///   with auxiliary heatmaps at ½ and ¼ resolution for deep supervision;
/// - a **vessel head**: 14 logits per voxel (background + the 13 artery locations), trained on the
///   series that have vessel labels;
/// - **location-aware pooling** into the 14 competition outputs: location l scores the highest
///   aneurysm probability inside l's predicted region (max over voxels of p_aneurysm · p_vessel(l));
///   "Aneurysm Present" adds a global branch (average- and max-pooled bottleneck features) to the
///   highest aneurysm probability anywhere;
/// - optionally the modality as extra constant input channels;
/// - optionally each voxel's position in the prepared crop (three coordinate channels, mm from the
///   crop's centre / 64): the crop is centred on the head, so where a voxel lies says which artery
///   it can be — context a patch of a few centimetres does not hold;
/// - optionally an image sampled n times finer than the grid it computes on (`inputSubdivision`): the
///   n³ samples inside each grid voxel become n³ input channels (space-to-depth), so detail below the
///   grid's spacing — a 2 mm aneurysm's bulge on a 4 mm artery at a 1.6 mm grid — reaches the network
///   at almost the grid's cost (only the stem's first convolution widens).
///
/// Parameter names follow PyTorch module paths (`stem.conv1.weight`, `down.0.weight`, …).
public final class Detector {
    public struct Output {
        /// [N, 1, D, H, W] aneurysm logits.
        public var heatmap: Tensor
        /// [N, 1, D/2, H/2, W/2] and [N, 1, D/4, H/4, W/4] aneurysm logits (deep supervision).
        public var auxiliaryHeatmaps: [Tensor]
        /// [N, 14, D, H, W] vessel logits (channel 0 background, 1 + l for location l).
        public var vessels: Tensor
        /// [N, 14] logits in the competition's order.
        public var logits: Tensor
        /// [N, 1] the global branch's term of "Aneurysm Present".
        public var global: Tensor
        public init(heatmap: Tensor, auxiliaryHeatmaps: [Tensor], vessels: Tensor, logits: Tensor, global: Tensor) {
            self.heatmap = heatmap
            self.auxiliaryHeatmaps = auxiliaryHeatmaps
            self.vessels = vessels
            self.logits = logits
            self.global = global
        }
    }

    /// Conv-InstanceNorm-LeakyReLU twice, with a residual connection (1×1 convolution when widths differ).
    final class ResidualBlock {
        let conv1: Conv3d, norm1: InstanceNorm3d, conv2: Conv3d, norm2: InstanceNorm3d
        let shortcut: Conv3d?

        init(_ s: ParameterStore, _ name: String, _ inChannels: Int, _ outChannels: Int) throws {
            conv1 = try Conv3d(s, "\(name).conv1", inChannels, outChannels, kernel: 3, padding: 1)
            norm1 = try InstanceNorm3d(s, "\(name).norm1", outChannels)
            conv2 = try Conv3d(s, "\(name).conv2", outChannels, outChannels, kernel: 3, padding: 1)
            norm2 = try InstanceNorm3d(s, "\(name).norm2", outChannels)
            shortcut = inChannels == outChannels ? nil : try Conv3d(s, "\(name).shortcut", inChannels, outChannels, kernel: 1)
        }

        func callAsFunction(_ x: Tensor) throws -> Tensor {
            let a = try norm1(conv1(x)).leakyRelu()
            let b = try norm2(conv2(a))
            return try (b + (shortcut.map { try $0(x) } ?? x)).leakyRelu()
        }
    }

    public let store: ParameterStore
    public let baseFilters: Int
    /// Run the convolutions under automatic mixed precision in this type (bf16 on CPUs with AVX-512
    /// BF16 and on CUDA); the heads' outputs come back in float32 and the pooling into the 14 logits,
    /// whose clamp near 1 bf16 cannot represent, runs in float32. nil: float32 throughout.
    public var autocast: DType?
    /// Modalities fed as constant input channels (0: image only).
    public let modalityChannels: Int
    /// 3 when the network takes the voxel coordinates (`coordinates(origin:shape:grid:spacing:device:)`)
    /// as input channels, else 0.
    public let coordinateChannels: Int
    /// The image is sampled this many times finer than the grid along each axis (1: on the grid).
    public let inputSubdivision: Int
    /// How the heatmap is pooled into the 13 location outputs (`locationLogits`).
    public enum LocationPooling: String, Codable, Sendable, CaseIterable {
        /// Each voxel weighted by the vessel head's probability that it is artery l's lumen
        /// (softmax over background and the 13 arteries): what training optimises.
        case lumen
        /// Each voxel weighted by the probability that it belongs to artery l rather than to another
        /// artery (softmax over the 13 arteries alone, background left out). An aneurysm's centre lies
        /// beside its artery's lumen, where the lumen probability is small and the background's large;
        /// this asks only which artery the voxel is nearest.
        case artery
    }
    public var locationPooling = LocationPooling.lumen
    let stem: ResidualBlock
    let down: [Conv3d]
    let encoder: [ResidualBlock]
    let up: [ConvTranspose3d]
    let decoder: [ResidualBlock]
    let heatmapHead: Conv3d
    let auxiliaryHeads: [Conv3d]
    let vesselHead: Conv3d
    let globalHead: Linear

    /// Three down-sampling steps: spatial sizes must be multiples of 8.
    public init(baseFilters f: Int = 16, modalityChannels: Int = 0, coordinateInput: Bool = false, inputSubdivision: Int = 1,
                device: Device = .cpu) throws {
        guard (1...4).contains(inputSubdivision) else { throw TorchError.invalidArgument("input subdivision must be 1 to 4, not \(inputSubdivision)") }
        let s = ParameterStore(device: device)
        store = s
        baseFilters = f
        self.modalityChannels = modalityChannels
        coordinateChannels = coordinateInput ? 3 : 0
        self.inputSubdivision = inputSubdivision
        let widths = [f, 2 * f, 4 * f, 8 * f]
        stem = try ResidualBlock(s, "stem", inputSubdivision * inputSubdivision * inputSubdivision + modalityChannels + coordinateChannels, f)
        down = try (0..<3).map { try Conv3d(s, "down.\($0)", widths[$0], widths[$0 + 1], kernel: 2, stride: 2) }
        encoder = try (0..<3).map { try ResidualBlock(s, "encoder.\($0)", widths[$0 + 1], widths[$0 + 1]) }
        up = try (0..<3).map { try ConvTranspose3d(s, "up.\($0)", widths[3 - $0], widths[2 - $0], kernel: 2, stride: 2) }
        decoder = try (0..<3).map { try ResidualBlock(s, "decoder.\($0)", 2 * widths[2 - $0], widths[2 - $0]) }
        heatmapHead = try Conv3d(s, "heatmap_head", f, 1, kernel: 1)
        auxiliaryHeads = try [2 * f, 4 * f].enumerated().map { try Conv3d(s, "aux_head.\($0.offset)", $0.element, 1, kernel: 1) }
        vesselHead = try Conv3d(s, "vessel_head", f, 14, kernel: 1)
        globalHead = try Linear(s, "global_head", 2 * widths[3], 1)
        // Start the heatmap near "no aneurysm" (p ≈ 0.01), as detectors do, so early training is not
        // swamped by the background's loss.
        for head in [heatmapHead] + auxiliaryHeads {
            if let bias = head.bias { try bias.tensor.copy(from: Tensor.full([1], value: -4.6, device: device)) }
        }
    }

    /// The coordinate channels [1, 3, D, H, W] of a block of `shape` voxels starting at `origin` of a
    /// prepared grid of `grid` voxels spaced `spacing` mm: per axis (depth, height, width), the distance
    /// from the grid's centre in mm over 64, so that the values do not depend on the spacing or the crop.
    public static func coordinates(origin: [Int], shape: [Int], grid: [Int], spacing: Double, device: Device = .cpu) throws -> Tensor {
        guard origin.count == 3, shape.count == 3, grid.count == 3 else {
            throw TorchError.invalidArgument("coordinates need 3-D origin, shape and grid")
        }
        let planes = try (0..<3).map { a -> Tensor in
            let centre = Double(grid[a] - 1) / 2
            let values = (0..<shape[a]).map { Float((Double(origin[a] + $0) - centre) * spacing / 64) }
            var view = [1, 1, 1, 1, 1]
            view[2 + a] = shape[a]
            return try Tensor(values, shape: view, device: device).expand([1, 1] + shape)
        }
        return try Tensor.cat(planes, dim: 1).contiguous()
    }

    /// [N, 1, nD, nH, nW] → [N, n³, D, H, W]: channel (a·n + b)·n + c holds the sample at offset
    /// (a, b, c) (depth, height, width) inside each grid voxel.
    public static func spaceToDepth(_ image: Tensor, _ n: Int) throws -> Tensor {
        let s = image.shape
        guard n > 1 else { return image }
        guard s.count == 5, s[1] == 1, s[2...].allSatisfy({ $0 % n == 0 }) else {
            throw TorchError.invalidArgument("space-to-depth by \(n) needs [N, 1, D, H, W] with sizes divisible by \(n), got \(s)")
        }
        let (d, h, w) = (s[2] / n, s[3] / n, s[4] / n)
        return try image.reshape([s[0], d, n, h, n, w, n]).permute([0, 2, 4, 6, 1, 3, 5]).reshape([s[0], n * n * n, d, h, w]).contiguous()
    }

    /// `image` [N, 1, nD, nH, nW] (n = `inputSubdivision`; outputs are [D, H, W]); `modality`
    /// [N, modalityChannels] one-hot when the network takes it; `coordinates` [N or 1, 3, D, H, W] when
    /// it takes them.
    public func callAsFunction(_ image: Tensor, modality: Tensor? = nil, coordinates: Tensor? = nil) throws -> Output {
        let n = inputSubdivision
        guard image.shape.count == 5, image.shape[1] == 1, image.shape[2...].allSatisfy({ $0 > 0 && $0 % (8 * n) == 0 }) else {
            throw TorchError.invalidArgument("Detector expects [N, 1, D, H, W] with D, H, W multiples of \(8 * n), got \(image.shape)")
        }
        var x = try Self.spaceToDepth(image, n)
        let shape = [image.shape[0], 1] + image.shape[2...].map { $0 / n }
        if modalityChannels > 0 {
            guard let modality, modality.shape == [shape[0], modalityChannels] else {
                throw TorchError.invalidArgument("Detector needs a modality one-hot [\(shape[0]), \(modalityChannels)]")
            }
            let planes = try modality.to(image.dtype).reshape([shape[0], modalityChannels, 1, 1, 1]).expand([shape[0], modalityChannels] + Array(shape[2...]))
            x = try Tensor.cat([x, planes], dim: 1)
        }
        if coordinateChannels > 0 {
            guard let coordinates, coordinates.shape.count == 5, coordinates.shape[1] == coordinateChannels,
                  [1, shape[0]].contains(coordinates.shape[0]), Array(coordinates.shape[2...]) == Array(shape[2...]) else {
                throw TorchError.invalidArgument("Detector needs coordinates [\(shape[0]), 3, \(shape[2...].map(String.init).joined(separator: ", "))]")
            }
            let c = try coordinates.to(image.dtype)
            x = try Tensor.cat([x, c.shape[0] == shape[0] ? c : c.expand([shape[0], coordinateChannels] + Array(shape[2...]))], dim: 1)
        }
        let heads = try autocast.map { dtype in try Torch.withAutocast(image.device, dtype: dtype) { try self.heads(x) } } ?? self.heads(x)
        let (heatmap, auxiliary, vessels, global) = try autocast == nil ? heads
            : (heads.0.to(.float32), heads.1.map { try $0.to(.float32) }, heads.2.to(.float32), heads.3.to(.float32))
        return Output(heatmap: heatmap, auxiliaryHeatmaps: auxiliary, vessels: vessels,
                      logits: try Self.locationLogits(heatmap: heatmap, vessels: vessels, global: global, pooling: locationPooling), global: global)
    }

    /// Backbone and heads: heatmap, auxiliary heatmaps, vessel logits, the global term.
    func heads(_ x: Tensor) throws -> (Tensor, [Tensor], Tensor, Tensor) {
        var skips = [try stem(x)]
        for level in 0..<3 { skips.append(try encoder[level](down[level](skips[level]))) }
        var y = skips[3]
        var decoded: [Tensor] = []
        for level in 0..<3 {
            y = try decoder[level](Tensor.cat([up[level](y), skips[2 - level]], dim: 1))
            decoded.append(y)
        }
        let bottleneck = skips[3]
        let pooled = try Tensor.cat([bottleneck.adaptiveAvgPool3d((1, 1, 1)), bottleneck.adaptiveMaxPool3d((1, 1, 1))], dim: 1)
        return (try heatmapHead(y), try [auxiliaryHeads[0](decoded[1]), auxiliaryHeads[1](decoded[0])], try vesselHead(y),
                try globalHead(pooled.flatten(startDim: 1)))
    }

    /// The network over `image` [1, 1, nD, nH, nW] in overlapping windows of `window` (grid voxels, each a
    /// multiple of 8, at most the grid's size), half a window apart, their heatmap and vessel logits blended with a
    /// Gaussian weight that favours each window's centre (σ = window / 8, as nnU-Net), and the 14 logits
    /// pooled from the blended maps; the global term is the windows' mean. For a network trained on
    /// patches, this shows it inputs like those it learned from.
    /// `coordinates`, when the network takes them, cover the whole image ([1, 3, D, H, W]) and are cut
    /// with each window.
    public func slidingWindow(_ image: Tensor, modality: Tensor? = nil, coordinates: Tensor? = nil, window: [Int]) throws -> Output {
        let n = inputSubdivision
        let full = image.shape[2...].map { $0 / n }
        guard image.shape.count == 5, image.shape[0] == 1, window.count == 3,
              (0..<3).allSatisfy({ window[$0] > 0 && window[$0] % 8 == 0 && window[$0] <= full[$0] }) else {
            throw TorchError.invalidArgument("sliding window \(window) does not fit the input \(image.shape)")
        }
        if window == full { return try self(image, modality: modality, coordinates: coordinates) }
        func starts(_ n: Int, _ w: Int) -> [Int] {
            guard n > w else { return [0] }
            let step = max(1, w / 2), count = (n - w + step - 1) / step + 1
            return (0..<count).map { min($0 * step, n - w) }
        }
        // Gaussian importance of each window voxel, as a [1, 1, d, h, w] tensor.
        var weights = [Float](repeating: 0, count: window.reduce(1, *))
        for k in 0..<window[0] { for j in 0..<window[1] { for i in 0..<window[2] {
            var r = 0.0
            for (a, c) in [k, j, i].enumerated() {
                let centre = Double(window[a] - 1) / 2, sigma = Double(window[a]) / 8
                r += (Double(c) - centre) * (Double(c) - centre) / (sigma * sigma)
            }
            weights[(k * window[1] + j) * window[2] + i] = Float(max(exp(-r / 2), 1e-3))
        } } }
        let device = image.device
        let g = try Tensor(weights, shape: [1, 1] + window, device: device)
        let heat = try Tensor.zeros([1, 1] + full, device: device)
        let vessels = try Tensor.zeros([1, 14] + full, device: device)
        let total = try Tensor.zeros([1, 1] + full, device: device)
        var global: Tensor?
        var windows = 0
        for z in starts(full[0], window[0]) { for y in starts(full[1], window[1]) { for x in starts(full[2], window[2]) {
            func region(_ t: Tensor, scale: Int = 1) throws -> Tensor {
                try t.narrow(dim: 2, start: z * scale, length: window[0] * scale).narrow(dim: 3, start: y * scale, length: window[1] * scale)
                    .narrow(dim: 4, start: x * scale, length: window[2] * scale)
            }
            let out = try self(try region(image, scale: n).contiguous(), modality: modality, coordinates: try coordinates.map { try region($0).contiguous() })
            for (target, value) in [(heat, out.heatmap), (vessels, out.vessels), (total, g)] {
                let view = try region(target)
                try view.copy(from: view + (value === g ? g : value * g))
            }
            global = try global.map { try $0 + out.global } ?? out.global
            windows += 1
        } } }
        let h = try heat / total, v = try vessels / total
        let meanGlobal = try (global ?? Tensor.zeros([1, 1], device: device)) * (1.0 / Double(max(windows, 1)))
        return Output(heatmap: h, auxiliaryHeatmaps: [], vessels: v,
                      logits: try Self.locationLogits(heatmap: h, vessels: v, global: meanGlobal, pooling: locationPooling), global: meanGlobal)
    }

    /// The 14 output logits from the heads: for location l, logit(max over voxels of
    /// σ(heatmap) · r_l), r_l = softmax(vessels)[1 + l] (`lumen`) or the softmax of the 13 artery
    /// channels alone (`artery`); for "Aneurysm Present", logit(max σ(heatmap)) + `global`.
    public static func locationLogits(heatmap: Tensor, vessels: Tensor, global: Tensor, pooling: LocationPooling = .lumen) throws -> Tensor {
        let n = heatmap.shape[0]
        let p = try heatmap.sigmoid()                                              // [N, 1, D, H, W]
        let channels = pooling == .artery ? try vessels.narrow(dim: 1, start: 1, length: 13) : vessels
        let shifted = try channels - channels.max(dims: [1], keepDims: true)       // stable softmax
        let e = try shifted.exp()
        let softmax = try e / e.sum(dims: [1], keepDims: true)
        let regions = pooling == .artery ? softmax : try softmax.narrow(dim: 1, start: 1, length: 13)  // [N, 13, …]
        let perLocation = try (p * regions).reshape([n, 13, -1]).max(dims: [2])     // [N, 13]
        let anywhere = try p.reshape([n, -1]).max(dims: [1], keepDims: true)       // [N, 1]
        func logit(_ q: Tensor) throws -> Tensor {
            let c = try q.clamp(min: 1e-6, max: 1 - 1e-6)
            return try (c / (1.0 - c)).log()
        }
        return try Tensor.cat([logit(perLocation), logit(anywhere) + global], dim: 1)
    }
}
