import Anatomy
import Foundation
import Preprocessing
import Torch

/// The detector's second stage: a small 3D CNN that looks at a cube of the prepared image around one of
/// the heatmap's peaks, at the image's finest sampling, and gives the logit that an aneurysm lies there.
///
/// Why a second stage: the detector's heatmap finds aneurysms above 5 mm almost always, but gives those of
/// 3 mm or less a value near 0.1, below the false peaks of negative series (RESULTS.md, stop 16). It
/// computes on a 1.6 mm grid over the whole crop; a 1.5 mm bulge is a sub-voxel detail there. This
/// network sees only a 19 mm cube (24 samples at 0.8 mm) around each candidate, so it can spend its
/// capacity on the detail at a small cost per series.
///
/// With a `contextScale` s, a second input channel holds the same number of samples s times wider
/// apart (`contextCube`, each the mean of s³ samples): a 38 mm view at s = 2, in which the network can see
/// where in the vessel tree the candidate sits: a bifurcation or a loop that looks like a ball from up
/// close is a stretch of branching vessel from farther away.
///
/// Layers (PyTorch module paths): `block0` conv 3³ c→f at 24³ (c = 1, or 2 with context); `down0` conv
/// 2³ stride 2 f→2f; `block1` conv 3³ at 12³; `down1` 2f→4f; `block2` conv 3³ at 6³; each conv followed
/// by instance norm and leaky ReLU; then the average and the maximum over the cube, and `head` (linear
/// 8f → 1).
///
/// With a `depth` d above 1, d − 1 further 3³ convolutions follow `block1` at 12³ and `block2` at 6³
/// (`residual1.0`, `residual1.1`, …, `residual2.0`, …; conv, instance norm, leaky ReLU), each added to its
/// input. Why there: a convolution costs per sample, and those two samplings hold an eighth and a
/// sixty-fourth of the cube's, so depth 2 adds about 0.8 times the network's work where depth at 24³
/// would double it; and added to their input, a further convolution whose norm gives 0 leaves the
/// shallower network's output as it was, so depth costs the network nothing it could compute before
/// (RESULTS.md, stop 51).
///
/// With `namesLocations`, a second head names the artery the candidate sits on: `location.hidden`
/// (linear 8f + 3 → 64, leaky ReLU) and `location.out` (64 → 13 logits, `LocationLabel.locations`
/// order), fed the same pooled features and the candidate's place in the crop frame (mm from the crop's
/// centre, divided by `positionScaleMM`). Why: the location prior names a candidate by its place alone,
/// and the synthetic trees sit up to 6 mm off the crop's centre and turn by up to 8°, so neighbouring
/// arteries' Gaussians overlap; the cube shows which way the vessel under the candidate runs and what
/// branches from it (RESULTS.md, stop 35).
public final class CandidateClassifier {
    final class Block {
        let conv: Conv3d, norm: InstanceNorm3d
        init(_ s: ParameterStore, _ name: String, _ inChannels: Int, _ outChannels: Int) throws {
            conv = try Conv3d(s, "\(name).conv", inChannels, outChannels, kernel: 3, padding: 1)
            norm = try InstanceNorm3d(s, "\(name).norm", outChannels)
        }
        func callAsFunction(_ x: Tensor) throws -> Tensor { try norm(conv(x)).leakyRelu() }
    }

    public let store: ParameterStore
    public let baseFilters: Int
    /// The cube's edge in samples of the prepared image (a multiple of 4).
    public let patchSize: Int
    /// How many samples of the image one sample of the context channel spans along each axis (nil: no
    /// context channel).
    public let contextScale: Int?
    /// Channels of the input: the cube, and the context cube when there is one.
    public var inputChannels: Int { contextScale == nil ? 1 : 2 }
    let blocks: [Block]
    let down: [Conv3d]
    /// Convolutions per sampling at 12³ and 6³ (1: `block1` and `block2` alone).
    public let depth: Int
    /// The further convolutions after `block1` and after `block2`, `depth − 1` each.
    let residuals: [[Block]]
    let head: Linear
    /// Whether the network has the location head.
    public let namesLocations: Bool
    /// Run the network under automatic mixed precision in this type (bf16 on CPUs with AVX-512 BF16 and
    /// on CUDA); its logits come back in float32. nil: float32 throughout. The weights stay float32
    /// either way (autocast casts them per operation), so weights trained under bf16 read in float32.
    public var autocast: DType?
    let locationHidden: Linear?, locationOut: Linear?

    public static let defaultPatchSize = 24
    /// Positions are given to the location head in units of this many mm (the crop spans about ±75 mm).
    public static let positionScaleMM = 50.0
    static let locationHiddenWidth = 64
    public static let defaultBaseFilters = 16

    public init(baseFilters f: Int = CandidateClassifier.defaultBaseFilters, patchSize: Int = CandidateClassifier.defaultPatchSize,
                contextScale: Int? = nil, depth: Int = 1, namesLocations: Bool = false, device: Device = .cpu) throws {
        try Self.checkSizes(baseFilters: f, patchSize: patchSize, contextScale: contextScale, depth: depth)
        let s = ParameterStore(device: device)
        store = s
        baseFilters = f
        self.patchSize = patchSize
        self.contextScale = contextScale
        blocks = try [Block(s, "block0", contextScale == nil ? 1 : 2, f), Block(s, "block1", 2 * f, 2 * f), Block(s, "block2", 4 * f, 4 * f)]
        down = try [Conv3d(s, "down0", f, 2 * f, kernel: 2, stride: 2), Conv3d(s, "down1", 2 * f, 4 * f, kernel: 2, stride: 2)]
        self.depth = depth
        residuals = try [(1, 2 * f), (2, 4 * f)].map { stage, channels in
            try (0..<(depth - 1)).map { try Block(s, "residual\(stage).\($0)", channels, channels) }
        }
        head = try Linear(s, "head", 8 * f, 1)
        self.namesLocations = namesLocations
        locationHidden = namesLocations ? try Linear(s, "location.hidden", 8 * f + 3, Self.locationHiddenWidth) : nil
        locationOut = namesLocations ? try Linear(s, "location.out", Self.locationHiddenWidth, LocationLabel.locations.count) : nil
    }

    /// Refuses sizes the network cannot take. Bounded, since they come from a weights file's metadata or
    /// the command line: a cube of 128³ samples is 8 MB per peak, and a context 4 times wider is cut
    /// from 64 times as many samples.
    public static func checkSizes(baseFilters f: Int, patchSize: Int, contextScale: Int? = nil, depth: Int = 1) throws {
        guard (1...256).contains(f), (8...128).contains(patchSize), patchSize % 4 == 0 else {
            throw TorchError.invalidArgument("a candidate classifier needs 1 to 256 base filters and a patch size that is a multiple of 4 from 8 to 128, not \(f) and \(patchSize)")
        }
        if let scale = contextScale, !(2...4).contains(scale) {
            throw TorchError.invalidArgument("a candidate classifier's context spans 2 to 4 samples per sample, not \(scale)")
        }
        guard (1...4).contains(depth) else {
            throw TorchError.invalidArgument("a candidate classifier has 1 to 4 convolutions per sampling, not \(depth)")
        }
    }

    /// `patches` [N, C, P, P, P] (C = `inputChannels`) → logits [N].
    public func callAsFunction(_ patches: Tensor) throws -> Tensor {
        try outputs(patches, positions: nil, naming: false).logits
    }

    /// The aneurysm logits [N] and, with the location head, the 13 location logits [N, 13] of `patches`
    /// at `positions` [N, 3] (mm in the crop frame; not read without the head).
    public func outputs(_ patches: Tensor, positions: Tensor?) throws -> (logits: Tensor, locations: Tensor?) {
        try outputs(patches, positions: positions, naming: true)
    }

    func outputs(_ patches: Tensor, positions: Tensor?, naming: Bool) throws -> (logits: Tensor, locations: Tensor?) {
        let naming = naming && namesLocations
        if naming {
            guard let positions, positions.shape == [patches.shape.first ?? 0, 3] else {
                throw TorchError.invalidArgument("CandidateClassifier's location head expects positions [\(patches.shape.first ?? 0), 3], got \(positions?.shape ?? [])")
            }
        }
        func network() throws -> (Tensor, Tensor?) {
            let features = try pooled(patches)
            let logits = try head(features).flatten(startDim: 0)
            guard naming, let locationHidden, let locationOut, let positions else { return (logits, nil) }
            let hidden = try locationHidden(Tensor.cat([features, (positions / Self.positionScaleMM).to(features.dtype)], dim: 1)).leakyRelu()
            return (logits, try locationOut(hidden))
        }
        guard let autocast else { return try network() }
        let (logits, locations) = try Torch.withAutocast(patches.device, dtype: autocast, network)
        return (try logits.to(.float32), try locations?.to(.float32))
    }

    func pooled(_ patches: Tensor) throws -> Tensor {
        let p = patchSize, c = inputChannels
        guard patches.shape.count == 5, patches.shape[1] == c, Array(patches.shape[2...]) == [p, p, p] else {
            throw TorchError.invalidArgument("CandidateClassifier expects [N, \(c), \(p), \(p), \(p)], got \(patches.shape)")
        }
        var x = try blocks[0](patches)
        x = try blocks[1](down[0](x))
        for block in residuals[0] { x = try x + block(x) }
        x = try blocks[2](down[1](x))
        for block in residuals[1] { x = try x + block(x) }
        return try Tensor.cat([x.adaptiveAvgPool3d((1, 1, 1)), x.adaptiveMaxPool3d((1, 1, 1))], dim: 1).flatten(startDim: 1)
    }

    /// Which views of a cube prediction reads. Training shows every cube flipped along each axis at
    /// random, so each of the eight flips is a view the network learnt; the left-right mirror alone is
    /// the default, as every result before `all` was read.
    public enum TestTimeFlips: String, Codable, Sendable, CaseIterable {
        /// The cube and its left-right mirror.
        case mirror
        /// The cube and its flips along the other two axes (head-foot, front-back), each with its mirror:
        /// eight views, four times the network's work.
        case all

        /// The tensor axes ([N, C, D, H, W]) flipped for each view before the left-right mirror.
        var flips: [[Int]] { self == .mirror ? [[]] : [[], [2], [3], [2, 3]] }
    }

    /// What prediction reads from each cube of `patches` at `positions` (mm in the crop frame, x along
    /// the patient's left), from the cube and its left-right mirror in one pass each (with `flips` all,
    /// also from the cube flipped head-foot, front-back and both, each with its mirror): the aneurysm
    /// probability, the mean over the views; and, with the location head, the 13 location probabilities
    /// likewise, each mirror shown at the mirrored position (x negated) and its Left and Right
    /// probabilities exchanged back (nil without the head; `positions` are then not read). Flips along
    /// the other axes keep the position, as training showed them.
    public func read(_ patches: Tensor, positions: [[Double]], flips: TestTimeFlips = .mirror) throws -> (q: [Double], locations: [[Double]]?) {
        let n = patches.shape.first ?? 0, device = store.device
        var direct: Tensor?, mirrored: Tensor?
        if namesLocations {
            guard positions.count == n, positions.allSatisfy({ $0.count == 3 }) else {
                throw TorchError.invalidArgument("CandidateClassifier's location head expects \(n) positions of 3 coordinates, got \(positions.count)")
            }
            direct = try Tensor(positions.flatMap { $0.map(Float.init) }, shape: [n, 3], device: device)
            mirrored = try Tensor(positions.flatMap { [Float(-$0[0]), Float($0[1]), Float($0[2])] }, shape: [n, 3], device: device)
        }
        var q = [Double](repeating: 0, count: n)
        var named: [[Double]]? = namesLocations ? [[Double]](repeating: [Double](repeating: 0, count: LocationLabel.locations.count), count: n) : nil
        let views = Double(2 * flips.flips.count), count = LocationLabel.locations.count
        for axes in flips.flips {
            let view = axes.isEmpty ? patches : try patches.flip(axes)
            let a = try outputs(view, positions: direct), b = try outputs(view.flip([4]), positions: mirrored)
            for (e, v) in try (a.logits.sigmoid() + b.logits.sigmoid()).floats().enumerated() { q[e] += Double(v) / views }
            guard let la = a.locations, let lb = b.locations else { continue }
            let pa = try Self.softmax(la).floats(), pb = try Self.softmax(lb).floats()
            for e in 0..<n {
                for l in LocationLabel.locations {
                    named?[e][l.rawValue] += (Double(pa[e * count + l.rawValue]) + Double(pb[e * count + l.mirrored.rawValue])) / views
                }
            }
        }
        return (q, named)
    }

    /// Softmax over the last axis of [N, C] logits.
    static func softmax(_ logits: Tensor) throws -> Tensor {
        let e = try (logits - logits.max(dims: [1], keepDims: true)).exp()
        return try e / e.sum(dims: [1], keepDims: true)
    }

    /// The cube of `size` samples of `image` (depth, height, width = `shape`, row-major) whose centre is
    /// at `centre` (sample coordinates i along the width, j, k along the depth; a cube of even size is
    /// centred between samples). Samples beyond the image repeat its edge, so a candidate near the crop's
    /// border still gets a full cube.
    public static func cube(_ image: [Float], shape: [Int], centre: [Double], size: Int) -> [Float] {
        let (d, h, w) = (shape[0], shape[1], shape[2])
        let start = centre.map { Int(($0 - Double(size - 1) / 2 + 0.5).rounded(.down)) }
        var out = [Float](repeating: 0, count: size * size * size)
        guard d > 0, h > 0, w > 0, image.count == d * h * w else { return out }
        var at = 0
        for c in 0..<size {
            let k = min(max(start[2] + c, 0), d - 1)
            for b in 0..<size {
                let j = min(max(start[1] + b, 0), h - 1)
                let row = (k * h + j) * w
                for a in 0..<size {
                    out[at] = image[row + min(max(start[0] + a, 0), w - 1)]
                    at += 1
                }
            }
        }
        return out
    }

    /// The context channel's cube: `size` samples along each axis, each the mean of `scale`³ samples of
    /// `image`, centred on `centre` as `cube`'s is: the mean-pooled cube of `size · scale` samples (edges
    /// repeated likewise). Averaged rather than subsampled, so a vessel thinner than `scale` samples is
    /// dimmer, not gone.
    public static func contextCube(_ image: [Float], shape: [Int], centre: [Double], size: Int, scale: Int) -> [Float] {
        let wide = size * scale
        let fine = cube(image, shape: shape, centre: centre, size: wide)
        var out = [Float](repeating: 0, count: size * size * size)
        let norm = 1 / Float(scale * scale * scale)
        for c in 0..<size { for b in 0..<size { for a in 0..<size {
            var sum: Float = 0
            for z in 0..<scale { for y in 0..<scale {
                let row = ((c * scale + z) * wide + b * scale + y) * wide + a * scale
                for x in 0..<scale { sum += fine[row + x] }
            } }
            out[(c * size + b) * size + a] = sum * norm
        } } }
        return out
    }

    /// What a classifier with `contextScale` is shown of the candidate at `centre`: the cube of `size`
    /// samples, followed by the context cube when there is one (the channels of one input, in order).
    public static func view(_ image: [Float], shape: [Int], centre: [Double], size: Int, contextScale: Int?) -> [Float] {
        let near = cube(image, shape: shape, centre: centre, size: size)
        guard let scale = contextScale else { return near }
        return near + contextCube(image, shape: shape, centre: centre, size: size, scale: scale)
    }

    /// `cube` as a classifier trained on aligned contrast sees it: negated where the series' vessels are
    /// dark (T2's flow voids), so that an aneurysm is a bright ball in every modality and the few dark-vessel
    /// aneurysms share what the network learns from the many bright ones. A sign is enough: the instance
    /// norm after the first convolution takes away any offset, so the brain's level need not be known.
    public static func aligned(_ cube: [Float], darkVessels: Bool) -> [Float] {
        darkVessels ? cube.map { -$0 } : cube
    }

    /// Where the centre of the grid voxel (i, j, k) lies in the image's samples when the image is sampled
    /// `subdivision` times finer than the grid.
    public static func sampleCentre(gridVoxel v: [Double], subdivision n: Int) -> [Double] {
        v.map { $0 * Double(n) + Double(n - 1) / 2 }
    }
}

/// What a candidate classifier was trained for, stored in its weights (`willis_candidate_classifier`), so
/// that `willis predict` reads the same peaks and cuts the same cubes.
public struct CandidateClassifierSettings: Codable, Sendable, Equatable {
    public static let metadataKey = "willis_candidate_classifier"
    public var baseFilters: Int
    public var patchSize: Int
    /// Peaks of the heatmap looked at per series, and the least heatmap value of one.
    public var peaksPerSeries: Int
    public var peakThreshold: Float
    /// The preparation (`Preparation.cacheKey`) whose images the classifier was trained on.
    public var preparation: String
    /// When set, the classifier was trained on the dot filter's candidates too, and prediction must add
    /// them to the heatmap's peaks as training did (weights written before this setting have none).
    public var dotFilter: DotFilterCandidates?
    /// When true, the classifier was trained on cubes whose dark-vessel series were negated
    /// (`CandidateClassifier.aligned`), and prediction must negate them too (nil in older weights: not).
    public var alignsContrast: Bool?
    /// When set, the classifier takes a second, wider channel (`CandidateClassifier.contextScale`; nil in
    /// older weights: none).
    public var contextScale: Int?
    /// When true, the classifier was trained with no detector, on the dot filter's candidates alone: its
    /// weights carry the preparation and the location prior, and prediction reads no heatmap (nil in
    /// other weights: a detector's second stage).
    public var standsAlone: Bool?
    /// When true, the classifier has the location head (`CandidateClassifier.namesLocations`), and
    /// prediction names its candidates by it rather than by the location prior (nil in older weights: no head).
    public var namesLocations: Bool?
    /// "bf16" when the training steps ran under bf16 autocast (nil: float32). A record of how the
    /// weights were made; they are float32, and prediction reads them so.
    public var trainedPrecision: String?
    /// When set, the weights are the exponential moving average of the training steps' weights with this
    /// decay, not the last step's (nil: the last step's). A record; prediction reads both alike.
    public var averageDecay: Double?
    /// Convolutions per sampling at 12³ and 6³ (`CandidateClassifier.depth`; nil in older weights: 1).
    public var depth: Int?

    public init(baseFilters: Int, patchSize: Int, peaksPerSeries: Int, peakThreshold: Float, preparation: String,
                dotFilter: DotFilterCandidates? = nil, alignsContrast: Bool? = nil, contextScale: Int? = nil, standsAlone: Bool? = nil,
                namesLocations: Bool? = nil, trainedPrecision: String? = nil, averageDecay: Double? = nil, depth: Int? = nil) {
        self.baseFilters = baseFilters
        self.patchSize = patchSize
        self.peaksPerSeries = peaksPerSeries
        self.peakThreshold = peakThreshold
        self.preparation = preparation
        self.dotFilter = dotFilter
        self.alignsContrast = alignsContrast
        self.contextScale = contextScale
        self.standsAlone = standsAlone
        self.namesLocations = namesLocations
        self.trainedPrecision = trainedPrecision
        self.averageDecay = averageDecay
        self.depth = depth
    }
}

/// A second source of candidates beside the heatmap's peaks: the `count` strongest maxima of the Hessian
/// dot filter (`DotFilter.candidates`) inside the head less a `depthMM` shell, at the series' own voxels;
/// one within `separationMM` of a heatmap peak, or of a stronger one kept before, is left out. The maxima are
/// read as `peakSearch` says (nil: across the scales, as every second stage trained before it was a setting).
public struct DotFilterCandidates: Codable, Sendable, Hashable {
    public var count: Int
    public var depthMM: Double
    public var separationMM: Double
    public var peakSearch: DotFilter.PeakSearch?

    public init(count: Int, depthMM: Double = 16, separationMM: Double = 4, peakSearch: DotFilter.PeakSearch? = nil) {
        self.count = count
        self.depthMM = depthMM
        self.separationMM = separationMM
        self.peakSearch = peakSearch
    }

    /// The filter that finds these candidates.
    public var filter: DotFilter { DotFilter(peakSearch: peakSearch ?? .acrossScales) }

    /// The same candidates: a setting with no peak search (weights from before it was one) equals one
    /// across the scales, so such weights still form an ensemble with newer ones.
    public static func == (a: Self, b: Self) -> Bool {
        a.count == b.count && a.depthMM == b.depthMM && a.separationMM == b.separationMM && a.filter.peakSearch == b.filter.peakSearch
    }
}
