import Preprocessing
import Torch

/// How to train; the defaults are the reference notebook's.
public struct TrainingConfig: Codable, Sendable, Equatable {
    /// Loss on the 14 outputs.
    public enum Loss: String, Codable, Sendable {
        /// The notebook's: sigmoid in the model, then `nn.BCELoss`.
        case bceOnProbabilities
        /// Numerically stable `BCEWithLogitsLoss` on the logits (the fixed version).
        case bceWithLogits
    }

    public enum Model: String, Codable, Sendable {
        /// The notebook's UNet3D (global pooling to 14 outputs).
        case reference
        /// `Models.Detector`: heatmap, vessel and location-pooled heads (needs improved preprocessing).
        case detector
    }

    /// The detector's recipe (used when `model` is `.detector`).
    public enum Precision: String, Codable, Sendable, CaseIterable {
        case fp32, bf16
        /// The autocast type, nil for float32.
        public var autocast: DType? { self == .bf16 ? .bfloat16 : nil }
    }

    /// The second stage's precision (`willis train-candidates`): one of the two, or `fastest`, whichever
    /// takes the shorter training step on this machine, timed on a few steps before the run. A CPU's
    /// AVX-512 BF16 flag does not say that bf16 pays: the engine benchmark's classifier step ran 1.25 times
    /// slower than float32 on one such CPU without AMX and 1.74 times faster on another (BENCHMARKS.md).
    public enum CandidatePrecision: String, Codable, Sendable, CaseIterable {
        case fp32, bf16, fastest
    }

    public struct DetectorSettings: Codable, Sendable, Equatable {
        public var baseFilters = 16
        /// σ of the Gaussian around each localizer point, in mm.
        public var heatmapSigmaMM = 2.0
        public enum HeatmapLoss: String, Codable, Sendable {
            /// CenterNet's focal loss: voxels at a point (target ≥ ½) count as positives, the rest as
            /// negatives down-weighted by (1 − target)⁴ near a point; normalised by the positives.
            case focal
            /// Binary cross-entropy on the Gaussian with `heatmapPositiveWeight` on the positive side.
            case bce
        }
        public var heatmapLoss = HeatmapLoss.focal
        /// Weight of the positive (aneurysm) side of the BCE heatmap loss.
        public var heatmapPositiveWeight = 20.0
        public var vesselWeight = 0.5
        /// Weight of the soft Dice term beside cross-entropy in the vessel loss (nnU-Net's pair): the
        /// vessel term is `vesselWeight · (CE + vesselDiceWeight · (1 − Dice))`.
        public var vesselDiceWeight = 1.0
        /// Train the vessel head on territories: each vessel label widened to the voxels within this
        /// many mm of it (nearest label wins; `VesselTerritories`); 0 trains on the labels as they are.
        public var vesselTerritoryMM = 0.0
        /// Feed each voxel's position in the prepared crop as three input channels (`Detector.coordinates`).
        public var coordinateInput = false
        public var classificationWeight = 1.0
        /// Exponential moving average of the weights, used for validation and saved weights.
        public var emaDecay = 0.99
        public var weightDecay = 0.01
        /// Feed the modality (CTA, MRA, MRI T2, MRI T1post, from train.csv) as input channels. Off by
        /// default: at prediction DICOM says only CT or MR, so MR sequences would need a table.
        public var modalityInput = false
        /// Train on random patches of this shape (D, H, W, multiples of 8) cut from the prepared input,
        /// which can then be larger and finer; nil trains on the whole input. Validation and prediction
        /// run over the whole input in Gaussian-weighted sliding windows of the patch.
        public var patchShape: [Int]?
        /// Share of patches placed around a localizer point (jittered by up to a quarter patch) of a
        /// series that has one; the rest are placed uniformly.
        public var positiveFraction = 0.5
        /// Mixed precision for the network's convolutions (training, validation, and prediction by
        /// default): bf16 autocast on CUDA and on CPUs with AVX-512 BF16; nil or fp32 is float32.
        public var precision: Precision?
        public init() {}
    }

    public var model = Model.reference
    public var detector = DetectorSettings()
    public var epochs = 20
    /// Validate after every this many epochs and after the last (1: every epoch). An epoch not validated
    /// logs no validation loss or score; on a GPU validation can take a third of a short epoch.
    public var validateEvery = 1
    public var batchSize = 2
    public var learningRate = 1e-3
    public var plateauPatience = 3
    public var plateauFactor = 0.5
    public var baseFilters = 16
    /// How series become inputs (reference mode by default); its shape is the network input.
    public var preparation = Preparation()
    public var inputShape: [Int] {
        get { preparation.shape }
        set { preparation.shape = newValue }
    }
    public var loss = Loss.bceOnProbabilities
    /// Random changes to training inputs (off by default, as in the notebook).
    public var augmentation = Augmentation()
    /// Random left-right flips, swapping Left/Right location labels (the notebook had none).
    public var flipLeftRight: Bool {
        get { augmentation.flipLeftRight }
        set { augmentation.flipLeftRight = newValue }
    }
    public var seed: UInt64 = 0
    /// How each epoch draws its training series: all once, shuffled (default), balanced across
    /// modalities and locations (`BalancedSampling`), or weighted by `seriesWeights`.
    public var sampling = SeriesSampling.uniform
    /// `weighted` sampling's draw weight per SeriesInstanceUID (a series not listed weighs 1). Stored with
    /// the run, so a resumed run draws as it began.
    public var seriesWeights: [String: Double] = [:]
    /// Convolution weights and inputs in channels-last 3D layout: the same arithmetic summed in another
    /// order (gradients within ~0.2 % of the default layout's), 17 % faster per CPU step at 32×64×64.
    public var channelsLast = false

    public init() {}
}

extension KeyedDecodingContainer {
    /// The stored value, or `fallback` when the key is absent: a setting added after the file was written.
    func value<T: Decodable>(_ key: Key, or fallback: T) throws -> T { try decodeIfPresent(T.self, forKey: key) ?? fallback }
}

// A checkpoint stores its run's settings, and a run resumed by a newer Willis reads them back. Every setting
// added since then is absent there; its default is the behaviour from before it existed, so it is taken.
extension TrainingConfig {
    public init(from decoder: Decoder) throws {
        self.init()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        model = try c.value(.model, or: model)
        detector = try c.value(.detector, or: detector)
        epochs = try c.value(.epochs, or: epochs)
        validateEvery = try c.value(.validateEvery, or: validateEvery)
        batchSize = try c.value(.batchSize, or: batchSize)
        learningRate = try c.value(.learningRate, or: learningRate)
        plateauPatience = try c.value(.plateauPatience, or: plateauPatience)
        plateauFactor = try c.value(.plateauFactor, or: plateauFactor)
        baseFilters = try c.value(.baseFilters, or: baseFilters)
        preparation = try c.value(.preparation, or: preparation)
        loss = try c.value(.loss, or: loss)
        augmentation = try c.value(.augmentation, or: augmentation)
        seed = try c.value(.seed, or: seed)
        sampling = try c.value(.sampling, or: sampling)
        seriesWeights = try c.value(.seriesWeights, or: seriesWeights)
        channelsLast = try c.value(.channelsLast, or: channelsLast)
    }
}

extension TrainingConfig.DetectorSettings {
    public init(from decoder: Decoder) throws {
        self.init()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        baseFilters = try c.value(.baseFilters, or: baseFilters)
        heatmapSigmaMM = try c.value(.heatmapSigmaMM, or: heatmapSigmaMM)
        heatmapLoss = try c.value(.heatmapLoss, or: heatmapLoss)
        heatmapPositiveWeight = try c.value(.heatmapPositiveWeight, or: heatmapPositiveWeight)
        vesselWeight = try c.value(.vesselWeight, or: vesselWeight)
        vesselDiceWeight = try c.value(.vesselDiceWeight, or: vesselDiceWeight)
        vesselTerritoryMM = try c.value(.vesselTerritoryMM, or: vesselTerritoryMM)
        coordinateInput = try c.value(.coordinateInput, or: coordinateInput)
        classificationWeight = try c.value(.classificationWeight, or: classificationWeight)
        emaDecay = try c.value(.emaDecay, or: emaDecay)
        weightDecay = try c.value(.weightDecay, or: weightDecay)
        modalityInput = try c.value(.modalityInput, or: modalityInput)
        patchShape = try c.value(.patchShape, or: patchShape)
        positiveFraction = try c.value(.positiveFraction, or: positiveFraction)
        precision = try c.value(.precision, or: precision)
    }
}
