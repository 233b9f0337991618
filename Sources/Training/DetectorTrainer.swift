import Anatomy
import Dataset
import Dispatch
import Foundation
import Models
import Torch

/// What `TrainingRun` needs from a training loop, whichever network it trains.
public protocol EpochTrainer: AnyObject {
    var epoch: Int { get }
    var learningRate: Double { get }
    var lastDataWait: (seconds: Double, fraction: Double) { get }
    var onBatch: (Int, Int) -> Void { get set }
    /// Data-parallel training: set before the first epoch, then `synchronizeReplicas()`.
    var parallel: DataParallel? { get set }
    /// Every rank takes rank 0's weights (after initialisation or a resume).
    func synchronizeReplicas() throws
    /// The tensors that must be identical on every rank after each step.
    var replicatedTensors: [Tensor] { get }
    func trainEpoch(_ set: SampleSet) throws -> Double
    func evaluate(_ set: SampleSet) throws -> (loss: Double, probabilities: [[Double]])
    /// The last `evaluate`'s mean Dice of the vessel labels over the validation series that have them
    /// (nil for networks without a vessel head, or with no labelled series).
    var validationVesselDice: Double? { get }
    /// Ends an epoch; `validationLoss` is nil when the epoch was not validated.
    func endEpoch(validationLoss: Double?) throws
    func saveCheckpoint(to path: String) throws
    func loadCheckpoint(from path: String) throws
    /// The weights to predict with, under their PyTorch names.
    func saveWeights(to path: String, metadata: [String: String]) throws
    /// Starts from the weights in `path` instead of random ones (`ParameterStore.initialise(from:)`);
    /// returns its notes.
    func initialise(from path: String) throws -> [String]
}

extension Trainer: EpochTrainer {
    public var validationVesselDice: Double? { nil }
    public var learningRate: Double { optimizer.learningRate }
    public var replicatedTensors: [Tensor] { model.store.entries.map(\.tensor) }
    public func synchronizeReplicas() throws { try parallel?.synchronize(replicatedTensors) }
    public func saveWeights(to path: String, metadata: [String: String]) throws { try model.store.save(to: path, metadata: metadata) }
    public func initialise(from path: String) throws -> [String] { try model.store.initialise(from: SafeTensorsFile(path: path)) }
}

/// Trains `Models.Detector` on improved-mode inputs: a Gaussian heatmap loss around the localizer points
/// (with deep supervision at ½ and ¼ resolution), cross-entropy on vessel labels where a series has them,
/// and BCE on the 14 location-pooled outputs; AdamW with a cosine schedule; an exponential moving average
/// of the weights, which validation uses and `saveWeights` writes.
public final class DetectorTrainer: EpochTrainer {
    public let config: TrainingConfig
    public let model: Detector
    /// The moving average of `model`'s parameters (same names).
    public let average: Detector
    public let optimizer: Optimizer
    var schedule: CosineSchedule
    public private(set) var epoch = 0
    public var parallel: DataParallel?
    public var replicatedTensors: [Tensor] { model.store.entries.map(\.tensor) + average.store.entries.map(\.tensor) }
    public func synchronizeReplicas() throws { try parallel?.synchronize(replicatedTensors) }
    var rng: SplitMix64
    let device: Device
    public private(set) var lastDataWait = (seconds: 0.0, fraction: 0.0)
    public private(set) var validationVesselDice: Double?
    /// When set, validation reads its probabilities from the heatmap's peaks as `willis predict` does
    /// with a location prior (of the image and its mirror averaged, as `willis predict` reads them),
    /// instead of the network's pooled outputs.
    public var readout: CandidateReadout?
    public var onBatch: (Int, Int) -> Void = { _, _ in }
    public var learningRate: Double { optimizer.learningRate }

    public init(config: TrainingConfig, device: Device = .cpu) throws {
        guard config.preparation.mode == .improved else {
            throw TorchError.invalidArgument("the detector trains on improved-mode inputs (set preprocessing to improved)")
        }
        guard config.inputShape.allSatisfy({ $0 % 8 == 0 }) else {
            throw TorchError.invalidArgument("the detector needs input sizes that are multiples of 8, not \(config.inputShape)")
        }
        if let patch = config.detector.patchShape {
            guard patch.count == 3, patch.allSatisfy({ $0 > 0 && $0 % 8 == 0 }), zip(patch, config.inputShape).allSatisfy({ $0 <= $1 }) else {
                throw TorchError.invalidArgument("the patch shape \(patch) must be multiples of 8 within the input \(config.inputShape)")
            }
        }
        self.config = config
        self.device = device
        try Torch.manualSeed(config.seed)
        let s = config.detector
        let modalities = s.modalityInput ? Modality.allCases.count : 0
        let n = config.preparation.subdivision
        let net = try Detector(baseFilters: s.baseFilters, modalityChannels: modalities, coordinateInput: s.coordinateInput,
                               inputSubdivision: n, device: device)
        let copy = try Detector(baseFilters: s.baseFilters, modalityChannels: modalities, coordinateInput: s.coordinateInput,
                                inputSubdivision: n, device: device)
        try copy.store.copyValues(from: net.store)
        net.autocast = s.precision?.autocast
        copy.autocast = s.precision?.autocast
        model = net
        average = copy
        optimizer = try Optimizer(.adamW(weightDecay: s.weightDecay), parameters: model.store.parameters, learningRate: config.learningRate)
        schedule = CosineSchedule(base: config.learningRate, minimum: config.learningRate * 0.01, totalEpochs: config.epochs,
                                  warmupEpochs: min(1, config.epochs - 1))
        try optimizer.setLearningRate(schedule.step(epoch: 0, metric: nil))
        rng = SplitMix64(seed: config.seed, stream: 1)
    }

    // MARK: - Batches

    static func hostBatch(_ samples: [Sample], shape: [Int], spacing: Double, sigmaMM: Double, modalityInput: Bool,
                          territoryMM: Double = 0) -> HostBatch {
        var b = HostBatch(ids: samples.map(\.id), inputs: ParallelMap.concatenated(samples.map(\.input)),
                          labels: samples.flatMap { $0.labels.map { $0 ? Float(1) : 0 } })
        b.heatmaps = samples.flatMap { ($0.targets ?? DetectionTargets()).heatmap(shape: shape, spacing: spacing, sigmaMM: sigmaMM) }
        for (n, s) in samples.enumerated() {
            guard let v = s.vessels else { continue }
            b.vesselSamples.append(n)
            let labels = territoryMM > 0 ? VesselTerritories.widened(v, shape: shape, radius: territoryMM / spacing) : v
            b.vessels += labels.map(Int64.init)
        }
        b.gridOrigins = samples.map(\.gridOrigin)
        b.grid = samples.first?.grid ?? shape
        if modalityInput {
            b.modalities = samples.flatMap { s in (0..<Modality.allCases.count).map { Float(s.modality == $0 ? 1 : 0) } }
        }
        return b
    }

    /// A training batch's patches: each sample cut at a drawn origin (unless the patch is the whole input),
    /// then augmented. The random draws come first, in the order a one-thread loop makes them (every
    /// origin, then every sample's augmentation), so the batch is the same on any number of cores; the
    /// cutting and augmenting, most of a batch's time, then run on all cores. Noise is drawn voxel by
    /// voxel as it is added, so with noise the samples are augmented one after another.
    public static func trainingPatches(_ samples: [Sample], full: [Int], patch: [Int], positiveFraction: Double, marginVoxels: Double,
                                       augmentation: Augmentation, using rng: inout SplitMix64) -> [Sample] {
        let origins: [[Int]]? = patch == full ? nil : samples.map {
            patchOrigin($0, full: full, patch: patch, positiveFraction: positiveFraction, using: &rng)
        }
        @Sendable func cut(_ n: Int) -> Sample {
            guard let origins else { return samples[n] }
            return samples[n].cropped(origin: origins[n], patch: patch, shape: full, marginVoxels: marginVoxels)
        }
        if augmentation.noise > 0 {
            let patches = (0..<samples.count).map(cut)
            return patches.map { augmentation.apply($0, shape: patch, using: &rng) }
        }
        let draws: [Augmentation.Draw]? = augmentation.isIdentity ? nil : samples.map { _ in augmentation.draw(using: &rng) }
        return ParallelMap.map(samples.count) { n -> Sample in
            let p = cut(n)
            guard let draws else { return p }
            return augmentation.apply(draws[n], to: p, shape: patch)
        }
    }

    /// Where a training patch starts: around a random localizer point (jittered by up to a quarter of the
    /// patch) with probability `positiveFraction` when the sample has points, else anywhere; inside the grid.
    public static func patchOrigin(_ s: Sample, full: [Int], patch: [Int], positiveFraction: Double, using rng: inout SplitMix64) -> [Int] {
        let points = s.targets?.points ?? []
        if !points.isEmpty && Double.random(in: 0..<1, using: &rng) < positiveFraction {
            let p = points[Int.random(in: 0..<points.count, using: &rng)]
            let centre = [p.k, p.j, p.i]
            return (0..<3).map { a in
                let jitter = Double.random(in: -0.25...0.25, using: &rng) * Double(patch[a])
                return min(max(Int((centre[a] + jitter - Double(patch[a]) / 2).rounded()), 0), full[a] - patch[a])
            }
        }
        return (0..<3).map { Int.random(in: 0...(full[$0] - patch[$0]), using: &rng) }
    }

    struct Losses {
        var total: Tensor
        var probabilities: Tensor
        /// The aneurysm heatmap's logits [m, 1, …] on the grid.
        var heatmap: Tensor
        /// Data-parallel training: this rank's part of the global batch's loss (what it back-propagates);
        /// the parts summed over the ranks equal `total` computed on the whole global batch.
        var share: Tensor
        /// When asked: the hard Dice of each labelled sample's vessel labels (mean over the labels present
        /// in its target or its prediction).
        var vesselDice: [Double] = []
    }

    /// 1 − the soft Dice of `logits` [m, 14, …] against `target` [m, …] (class indices), per sample and
    /// averaged over the 13 vessel labels (background left out); a label absent from both counts as
    /// agreement (smoothing 1). Per sample, so that data-parallel shares add up as the cross-entropy's do.
    public static func softDiceLoss(_ logits: Tensor, _ target: Tensor) throws -> Tensor {
        let classes = logits.shape[1]
        let shifted = try logits - logits.max(dims: [1], keepDims: true)
        let e = try shifted.exp()
        let p = try e / e.sum(dims: [1], keepDims: true)
        let labels = try Tensor.arange(classes, device: logits.device).reshape([1, classes] + Array(repeating: 1, count: logits.shape.count - 2))
        let oneHot = try target.unsqueeze(1).eq(labels).to(.float32)
        let spatial = Array(2..<logits.shape.count)
        let intersection = try (p * oneHot).sum(dims: spatial)                    // [m, 14]
        let sizes = try p.sum(dims: spatial) + oneHot.sum(dims: spatial)
        let dice = try ((intersection * 2.0 + 1.0) / (sizes + 1.0)).narrow(dim: 1, start: 1, length: classes - 1)
        return try (1.0 - dice.mean(dims: [1])).mean()
    }

    /// Hard Dice per sample between the argmax of `logits` [m, 14, …] and `target` (class indices, same
    /// order), averaged over the vessel labels found in either.
    public static func hardDice(_ logits: Tensor, _ target: [Int64]) throws -> [Double] {
        let m = logits.shape[0], n = logits.shape.dropFirst(2).reduce(1, *), classes = logits.shape[1]
        let predicted = try logits.argmax(dim: 1).toArray(of: Int64.self)
        return (0..<m).map { s in
            var both = [Int](repeating: 0, count: classes), sizes = [Int](repeating: 0, count: classes)
            for v in (s * n)..<((s + 1) * n) {
                let (a, b) = (Int(predicted[v]), Int(target[v]))
                sizes[a] += 1
                sizes[b] += 1
                if a == b { both[a] += 1 }
            }
            let present = (1..<classes).filter { sizes[$0] > 0 }
            guard !present.isEmpty else { return 1 }
            return present.map { 2 * Double(both[$0]) / Double(sizes[$0]) }.reduce(0, +) / Double(present.count)
        }
    }

    /// The network over the batch `x`: whole, or each input in sliding windows of `window` when that is
    /// smaller than `grid`.
    static func forward(_ net: Detector, _ x: Tensor, modality: Tensor?, coordinates: Tensor?, window: [Int]?, grid: [Int]) throws -> Detector.Output {
        guard let window, window != grid else { return try net(x, modality: modality, coordinates: coordinates) }
        let parts = try (0..<x.shape[0]).map { n in
            try net.slidingWindow(x.narrow(dim: 0, start: n, length: 1).contiguous(),
                                  modality: modality?.narrow(dim: 0, start: n, length: 1).contiguous(),
                                  coordinates: coordinates?.narrow(dim: 0, start: n, length: 1).contiguous(), window: window)
        }
        return Detector.Output(heatmap: try Tensor.cat(parts.map(\.heatmap), dim: 0), auxiliaryHeatmaps: [],
                               vessels: try Tensor.cat(parts.map(\.vessels), dim: 0), logits: try Tensor.cat(parts.map(\.logits), dim: 0),
                               global: try Tensor.cat(parts.map(\.global), dim: 0))
    }

    /// The network's inputs for batch `b` on a grid of `grid` voxels: the image, the modality one-hot and
    /// the coordinate channels when the network takes them.
    func networkInputs(_ net: Detector, _ b: HostBatch, grid: [Int]) throws -> (image: Tensor, modality: Tensor?, coordinates: Tensor?) {
        let n = config.preparation.subdivision
        let x = try Tensor(b.inputs, shape: [b.count, 1] + grid.map { $0 * n }, device: device)
        let modality = b.modalities.isEmpty ? nil : try Tensor(b.modalities, shape: [b.count, Modality.allCases.count], device: device)
        let coordinates = net.coordinateChannels == 0 ? nil : try Tensor.cat(b.gridOrigins.map {
            try Detector.coordinates(origin: $0, shape: grid, grid: b.grid, spacing: config.preparation.spacing, device: device)
        }, dim: 0)
        return (x, modality, coordinates)
    }

    /// The heatmap probabilities of the batch's left-right mirror, mirrored back: the other half of what
    /// `willis predict` averages. The coordinates stay those of the grid's voxels, as in prediction (the
    /// mirror is a head whose left lies where the right was).
    func mirroredHeatmap(_ net: Detector, _ b: HostBatch, window: [Int]?) throws -> Tensor {
        let grid = config.inputShape
        let (x, modality, coordinates) = try networkInputs(net, b, grid: grid)
        return try Self.forward(net, x.flip([4]), modality: modality, coordinates: coordinates, window: window, grid: grid).heatmap.sigmoid().flip([4])
    }

    /// The loss of batch `b`. With `weight` (this rank's share of a data-parallel global batch) every
    /// term is normalised over the global batch: the heatmap terms by the positive voxels of all ranks
    /// (one small all-reduce of the counts), the vessel term by all ranks' labelled series, the
    /// classification term by the share, so that what the ranks back-propagate adds up to the loss one
    /// process would compute on the global batch.
    /// `window`: run the network in sliding windows of this shape, one sample at a time, as prediction
    /// does for weights trained on patches (validation then measures what prediction will do).
    func losses(_ net: Detector, _ b: HostBatch, shape inputShape: [Int]? = nil, weight: Double? = nil, window: [Int]? = nil,
                measureDice: Bool = false) throws -> Losses {
        let grid = inputShape ?? config.inputShape
        let shape = [b.count, 1] + grid
        let (x, modality, coordinates) = try networkInputs(net, b, grid: grid)
        let out = try Self.forward(net, x, modality: modality, coordinates: coordinates, window: window, grid: grid)
        let s = config.detector
        let heat = try Tensor(b.heatmaps, shape: shape, device: device)
        let positive = try Tensor([Float(s.heatmapPositiveWeight)], shape: [1], device: device)
        var targets = [heat]
        for level in out.auxiliaryHeatmaps.indices {
            let k = 2 << level  // 2, then 4
            targets.append(try heat.maxPool3d(kernel: (k, k, k)))
        }
        var normalizers: [Tensor?] = Array(repeating: nil, count: targets.count)
        var vesselScale = 1.0
        var dice: [Double] = []
        if let weight, let parallel {
            // Positive voxels per level and labelled series, summed over the ranks.
            var counts = try targets.map { Float(try $0.ge(0.5).to(.float32).sum().item()) }
            counts.append(Float(b.vesselSamples.count))
            if weight == 0 { counts = counts.map { _ in 0 } }
            let local = counts
            let t = try Tensor(counts, shape: [counts.count])
            try parallel.group.allReduce([t], .sum)
            let global = try t.floats()
            normalizers = try (0..<targets.count).map { try Tensor([max(global[$0], 1)], shape: [1], device: device) }
            vesselScale = global.last.map { $0 > 0 ? Double(local.last ?? 0) / Double($0) : 0 } ?? 0
        }
        func heatmapLoss(_ logits: Tensor, _ level: Int) throws -> Tensor {
            switch s.heatmapLoss {
            case .bce: return try logits.binaryCrossEntropyWithLogits(target: targets[level], posWeight: positive)
            case .focal: return try Self.focalLoss(logits, targets[level], normalizer: normalizers[level])
            }
        }
        // A focal term normalised over the global batch is already this rank's part; a BCE mean is weighted.
        let heatShare = s.heatmapLoss == .focal ? 1.0 : (weight ?? 1)
        var total = try heatmapLoss(out.heatmap, 0)
        var share = try total * heatShare
        for (level, aux) in out.auxiliaryHeatmaps.enumerated() {
            let term = try heatmapLoss(aux, level + 1) * (0.5 / Double(level + 1))
            total = try total + term
            share = try share + term * heatShare
        }
        if !b.vesselSamples.isEmpty {
            let index = try Tensor(b.vesselSamples.map(Int64.init), shape: [b.vesselSamples.count], device: device)
            let logits = try out.vessels.indexSelect(dim: 0, index: index)
            let target = try Tensor(b.vessels, shape: [b.vesselSamples.count] + grid, device: device)
            var segmentation = try logits.crossEntropy(target: target)
            if s.vesselDiceWeight > 0 { segmentation = try segmentation + Self.softDiceLoss(logits, target) * s.vesselDiceWeight }
            let term = try segmentation * s.vesselWeight
            total = try total + term
            share = try share + term * vesselScale
            if measureDice { dice = try Self.hardDice(logits, b.vessels) }
        }
        let y = try Tensor(b.labels, shape: [b.count, 14], device: device)
        let classification = try out.logits.binaryCrossEntropyWithLogits(target: y) * s.classificationWeight
        total = try total + classification
        share = try share + classification * (weight ?? 1)
        if weight == 0 { share = try share * 0.0 }
        return Losses(total: total, probabilities: try out.logits.sigmoid(), heatmap: out.heatmap, share: weight == nil ? total : share, vesselDice: dice)
    }

    /// CenterNet's penalty-reduced focal loss (α = 2, β = 4) on heatmap logits, summed and divided by
    /// the number of positive voxels (at least 1), or by `normalizer` when given.
    public static func focalLoss(_ logits: Tensor, _ target: Tensor, normalizer: Tensor? = nil) throws -> Tensor {
        let p = try logits.sigmoid()
        let positive = try target.ge(0.5).to(.float32)
        let negativeWeight = try (1.0 - target).pow(4) * (1.0 - positive)
        let positiveTerm = try positive * (1.0 - p).square() * logits.logSigmoid()
        let negativeTerm = try negativeWeight * p.square() * logits.neg().logSigmoid()
        let count = try normalizer ?? positive.sum().clamp(min: 1)
        return try ((positiveTerm + negativeTerm).sum() / count).neg()
    }

    func updateAverage() throws {
        try average.store.moveAverage(towards: model.store, decay: config.detector.emaDecay)
    }

    // MARK: - Epochs

    public func trainEpoch(_ set: SampleSet) throws -> Double {
        // Flips (with the targets and the side of every label) and intensity changes; rotation and
        // scaling are not applied to the detector's targets, so they are left out here.
        var allowed = config.augmentation
        allowed.rotationDegrees = 0
        allowed.scale = 0
        let augmentation = allowed
        let (full, spacing) = (config.inputShape, config.preparation.spacing)
        let shape = config.detector.patchShape ?? full
        let (sigma, modalityInput) = (config.detector.heatmapSigmaMM, config.detector.modalityInput)
        let (positiveFraction, territory) = (config.detector.positiveFraction, config.detector.vesselTerritoryMM)
        let margin = 3 * max(sigma / spacing, 0.5)
        model.store.isTraining = true
        let result = try Passes.train(set, batchSize: config.batchSize, rng: &rng, parallel: parallel, sampling: config.sampling, seriesWeights: config.seriesWeights, build: { samples, generator in
            let changed = Self.trainingPatches(samples, full: full, patch: shape, positiveFraction: positiveFraction, marginVoxels: margin,
                                               augmentation: augmentation, using: &generator.rng)
            return Self.hostBatch(changed, shape: shape, spacing: spacing, sigmaMM: sigma, modalityInput: modalityInput, territoryMM: territory)
        }, step: { batch, weight in
            try optimizer.zeroGrad()
            if let parallel {
                let l = try losses(model, batch, shape: shape, weight: weight).share
                try l.backward()
                try parallel.reduceGradients(model.store.parameters)
                try optimizer.step()
                try updateAverage()
                return try l.item()
            }
            let l = try losses(model, batch, shape: shape).total
            try l.backward()
            try optimizer.step()
            try updateAverage()
            return try l.item()
        }, onBatch: onBatch)
        lastDataWait = result.wait
        epoch += 1
        return result.meanLoss
    }

    /// Mean loss and probabilities of the weight average, in order.
    public func evaluate(_ set: SampleSet) throws -> (loss: Double, probabilities: [[Double]]) {
        average.store.isTraining = false
        let (shape, spacing) = (config.inputShape, config.preparation.spacing)
        let (sigma, modalityInput) = (config.detector.heatmapSigmaMM, config.detector.modalityInput)
        let territory = config.detector.vesselTerritoryMM
        let (readout, grid) = (self.readout, config.preparation.cropGrid)
        var dice: [Double] = []
        let result = try Torch.withNoGrad {
            try Passes.evaluate(set, batchSize: config.batchSize * (parallel?.worldSize ?? 1), parallel: parallel, build: {
                Self.hostBatch($0, shape: shape, spacing: spacing, sigmaMM: sigma, modalityInput: modalityInput, territoryMM: territory)
            }) { batch in
                let l = try losses(average, batch, window: config.detector.patchShape, measureDice: true)
                dice += l.vesselDice
                guard let readout else { return (try l.total.item(), try l.probabilities.floats()) }
                // The image and its mirror averaged, as willis predict reads them.
                let mirrored = try mirroredHeatmap(average, batch, window: config.detector.patchShape)
                let heat = try ((l.heatmap.sigmoid() + mirrored) * 0.5).floats()
                let size = heat.count / max(batch.count, 1)
                let p = (0..<batch.count).flatMap { n in
                    readout.probabilities(heatmap: Array(heat[(n * size)..<((n + 1) * size)]), grid: grid).map(Float.init)
                }
                return (try l.total.item(), p)
            }
        }
        // Data-parallel: each rank measured its part of the set; sum and count over the ranks.
        var totals = [dice.reduce(0, +), Double(dice.count)]
        if let parallel {
            let t = try Tensor(totals.map(Float.init), shape: [2])
            try parallel.group.allReduce([t], .sum)
            totals = try t.floats().map(Double.init)
        }
        validationVesselDice = totals[1] > 0 ? totals[0] / totals[1] : nil
        lastDataWait = result.wait
        return (result.loss, result.probabilities)
    }

    public func endEpoch(validationLoss: Double?) throws {
        try optimizer.setLearningRate(schedule.step(epoch: epoch, metric: validationLoss))
    }

    // MARK: - Checkpoints

    typealias State = TrainingCheckpoint.State<CosineSchedule>

    /// Both the network and its weight average start from the file's weights.
    public func initialise(from path: String) throws -> [String] {
        let file = try SafeTensorsFile(path: path)
        _ = try average.store.initialise(from: file)
        return try model.store.initialise(from: file)
    }

    public func saveCheckpoint(to path: String) throws {
        try TrainingCheckpoint.write(model.store.namedTensors + average.store.namedTensors.map { ("average.\($0.0)", $0.1) },
                                     optimizer: optimizer, state: State(epoch: epoch, schedule: schedule, rngState: rng.state, config: config),
                                     model: "detector", to: path)
    }

    public func loadCheckpoint(from path: String) throws {
        let (tensors, state) = try TrainingCheckpoint.read(path, model: "detector", optimizer: optimizer, as: State.self)
        try model.store.load(tensors.filter { !$0.key.hasPrefix("average.") })
        try average.store.load(Dictionary(uniqueKeysWithValues: tensors.filter { $0.key.hasPrefix("average.") }
            .map { (String($0.key.dropFirst("average.".count)), $0.value) }))
        schedule = state.schedule
        epoch = state.epoch
        try optimizer.setLearningRate(schedule.step(epoch: epoch, metric: nil))
        rng = SplitMix64(state: state.rngState)
    }

    /// The weight average under the detector's parameter names.
    public func saveWeights(to path: String, metadata: [String: String]) throws {
        var m = metadata
        m["willis_model"] = "detector"
        m["willis_detector"] = String(decoding: try JSONEncoder().encode(config.detector), as: UTF8.self)
        try average.store.save(to: path, metadata: m)
    }
}
