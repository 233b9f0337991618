import Preprocessing

/// How to train; the defaults are the reference notebook's.
public struct TrainingConfig: Codable, Sendable, Equatable {
    /// Loss on the 14 outputs.
    public enum Loss: String, Codable, Sendable {
        /// The notebook's: sigmoid in the model, then `nn.BCELoss`.
        case bceOnProbabilities
        /// Numerically stable `BCEWithLogitsLoss` on the logits (the fixed version).
        case bceWithLogits
    }

    public var epochs = 20
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
    /// Convolution weights and inputs in channels-last 3D layout: the same arithmetic summed in another
    /// order (gradients within ~0.2 % of the default layout's), 17 % faster per CPU step at 32×64×64.
    public var channelsLast = false

    public init() {}
}
