import Foundation

/// Decides the learning rate over training. Values are plain Swift; the
/// trainer hands the result to `Optimizer.setLearningRate`.
public protocol LearningRateSchedule: Codable, Sendable {
    /// The rate for `epoch` (0-based), given the last validation metric.
    mutating func step(epoch: Int, metric: Double?) -> Double
}

/// `torch.optim.lr_scheduler.ReduceLROnPlateau` in mode "min" with relative
/// threshold, as the reference uses it (patience 3, factor 0.5).
public struct ReduceLROnPlateau: LearningRateSchedule, Equatable {
    public var learningRate: Double
    public var factor: Double
    public var patience: Int
    public var threshold: Double
    public var minLearningRate: Double
    public var best: Double = .infinity
    public var badEpochs = 0

    public init(learningRate: Double, factor: Double = 0.1, patience: Int = 10, threshold: Double = 1e-4,
                minLearningRate: Double = 0) {
        self.learningRate = learningRate
        self.factor = factor
        self.patience = patience
        self.threshold = threshold
        self.minLearningRate = minLearningRate
    }

    public mutating func step(epoch: Int, metric: Double?) -> Double {
        guard let metric else { return learningRate }
        if metric < best * (1 - threshold) {
            best = metric
            badEpochs = 0
        } else {
            badEpochs += 1
        }
        if badEpochs > patience {
            // PyTorch skips reductions smaller than eps = 1e-8.
            let reduced = Swift.max(learningRate * factor, minLearningRate)
            if learningRate - reduced > 1e-8 { learningRate = reduced }
            badEpochs = 0
        }
        return learningRate
    }
}

// JSON has no infinity: `best` before any metric (a run whose first epochs are not validated) is left out
// and read back as +∞.
extension ReduceLROnPlateau {
    enum CodingKeys: String, CodingKey { case learningRate, factor, patience, threshold, minLearningRate, best, badEpochs }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(learningRate: try c.decode(Double.self, forKey: .learningRate), factor: try c.decode(Double.self, forKey: .factor),
                  patience: try c.decode(Int.self, forKey: .patience), threshold: try c.decode(Double.self, forKey: .threshold),
                  minLearningRate: try c.decode(Double.self, forKey: .minLearningRate))
        best = try c.decodeIfPresent(Double.self, forKey: .best) ?? .infinity
        badEpochs = try c.decode(Int.self, forKey: .badEpochs)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(learningRate, forKey: .learningRate)
        try c.encode(factor, forKey: .factor)
        try c.encode(patience, forKey: .patience)
        try c.encode(threshold, forKey: .threshold)
        try c.encode(minLearningRate, forKey: .minLearningRate)
        if best.isFinite { try c.encode(best, forKey: .best) }
        try c.encode(badEpochs, forKey: .badEpochs)
    }
}

/// Cosine annealing from `base` to `minimum` over `totalEpochs`, with optional linear warm-up.
public struct CosineSchedule: LearningRateSchedule, Equatable {
    public var base: Double
    public var minimum: Double
    public var totalEpochs: Int
    public var warmupEpochs: Int

    public init(base: Double, minimum: Double = 0, totalEpochs: Int, warmupEpochs: Int = 0) {
        self.base = base
        self.minimum = minimum
        self.totalEpochs = totalEpochs
        self.warmupEpochs = warmupEpochs
    }

    public mutating func step(epoch: Int, metric: Double?) -> Double {
        if epoch < warmupEpochs { return base * Double(epoch + 1) / Double(warmupEpochs) }
        let span = Swift.max(1, totalEpochs - warmupEpochs)
        let t = Swift.min(1, Double(epoch - warmupEpochs) / Double(span))
        return minimum + (base - minimum) * 0.5 * (1 + cos(Double.pi * t))
    }
}

/// Polynomial decay `base * (1 - epoch/total)^power` (nnU-Net uses power 0.9).
public struct PolySchedule: LearningRateSchedule, Equatable {
    public var base: Double
    public var totalEpochs: Int
    public var power: Double

    public init(base: Double, totalEpochs: Int, power: Double = 0.9) {
        self.base = base
        self.totalEpochs = totalEpochs
        self.power = power
    }

    public mutating func step(epoch: Int, metric: Double?) -> Double {
        let t = Swift.min(1, Double(epoch) / Double(Swift.max(1, totalEpochs)))
        return base * Foundation.pow(1 - t, power)
    }
}
