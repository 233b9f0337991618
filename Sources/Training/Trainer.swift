import Anatomy
import Dataset
import Dispatch
import Foundation
import Models
import Torch

/// The reference training loop: UNet3D, Adam, ReduceLROnPlateau on the validation loss.
public final class Trainer {
    public let config: TrainingConfig
    public let model: UNet3D
    public let optimizer: Optimizer
    public private(set) var schedule: ReduceLROnPlateau
    public private(set) var epoch = 0
    /// Data-parallel training (see `DataParallel`); nil on one process.
    public var parallel: DataParallel?
    /// Drives shuffling and augmentation; saved in checkpoints so a resumed run continues identically.
    var rng: SplitMix64
    let device: Device

    public init(config: TrainingConfig, device: Device = .cpu) throws {
        self.config = config
        self.device = device
        try Torch.manualSeed(config.seed)
        model = try UNet3D(baseFilters: config.baseFilters, device: device)
        if config.channelsLast { try model.store.convert(to: .channelsLast3d) }
        optimizer = try Optimizer(.adam(), parameters: model.store.parameters, learningRate: config.learningRate)
        schedule = ReduceLROnPlateau(learningRate: config.learningRate, factor: config.plateauFactor, patience: config.plateauPatience)
        rng = SplitMix64(seed: config.seed, stream: 1)
    }

    func batchTensors(_ batch: HostBatch) throws -> (Tensor, Tensor) {
        var x = try Tensor(batch.inputs, shape: [batch.count, 1] + config.inputShape, device: device)
        if config.channelsLast { x = try x.contiguous(.channelsLast3d) }
        let y = try Tensor(batch.labels, shape: [batch.count, 14], device: device)
        return (x, y)
    }

    static func hostBatch(_ samples: [Sample]) -> HostBatch {
        HostBatch(ids: samples.map(\.id), inputs: samples.flatMap(\.input), labels: samples.flatMap { $0.labels.map { $0 ? Float(1) : 0 } })
    }

    func loss(_ x: Tensor, _ y: Tensor) throws -> (loss: Tensor, probabilities: Tensor) {
        switch config.loss {
        case .bceOnProbabilities:
            let p = try model(x)
            do {
                return (try p.binaryCrossEntropy(target: y), p)
            } catch {
                // BCELoss refuses NaN probabilities with an error about its input's range; they come from
                // weights that have diverged, and that is what the run should say. Checked only when it
                // refuses, so a healthy step does not wait for the forward pass here.
                guard try p.sum().item().isFinite else { throw TrainingDiverged(place: "a batch", loss: .nan) }
                throw error
            }
        case .bceWithLogits:
            let z = try model.logits(x)
            return (try z.binaryCrossEntropyWithLogits(target: y), try z.sigmoid())
        }
    }

    /// One optimizer step on `batch`; returns the loss.
    public func step(_ batch: [Sample]) throws -> Double { try step(Self.hostBatch(batch)) }

    func step(_ batch: HostBatch) throws -> Double { try step(batch, weight: 1) }

    /// `weight` is the batch's share of the global batch (data-parallel training; 1 otherwise); returns
    /// the loss times that share.
    func step(_ batch: HostBatch, weight: Double) throws -> Double {
        model.store.isTraining = true
        let (x, y) = try batchTensors(batch)
        try optimizer.zeroGrad()
        let l = try loss(x, y).loss
        if let parallel {
            let share = try l * weight
            try share.backward()
            try parallel.reduceGradients(model.store.parameters)
            try optimizer.step()
            return try share.item()
        }
        try l.backward()
        try optimizer.step()
        return try l.item()
    }

    /// How long the last `trainEpoch` or `evaluate` waited for its input batches, and that time's share
    /// of the whole pass (0: the network never waited on data).
    public private(set) var lastDataWait = (seconds: 0.0, fraction: 0.0)
    /// Called after each training step with (batches done, batches in the epoch).
    public var onBatch: (Int, Int) -> Void = { _, _ in }

    /// One epoch over `samples` in a shuffled order; returns the mean batch loss.
    public func trainEpoch(_ samples: [Sample]) throws -> Double { try trainEpoch(SampleSet(samples)) }

    /// One epoch over `set` in a shuffled order, batches built and augmented in the background;
    /// returns the mean batch loss.
    public func trainEpoch(_ set: SampleSet) throws -> Double {
        let augmentation = config.augmentation, shape = config.inputShape
        let result = try Passes.train(set, batchSize: config.batchSize, rng: &rng, parallel: parallel, sampling: config.sampling, seriesWeights: config.seriesWeights, build: { samples, generator in
            Self.hostBatch(augmentation.isIdentity ? samples : samples.map { augmentation.apply($0, shape: shape, using: &generator.rng) })
        }, step: { try step($0, weight: $1) }, onBatch: onBatch)
        lastDataWait = result.wait
        // Running statistics saw only this rank's batches: average them before validation and the checkpoint.
        if let parallel { try parallel.average(model.store.entries.filter { $0.kind == .buffer && $0.tensor.dtype.isFloatingPoint }.map(\.tensor)) }
        epoch += 1
        return result.meanLoss
    }

    /// Mean loss and per-sample probabilities [N][14] in evaluation mode.
    public func evaluate(_ samples: [Sample]) throws -> (loss: Double, probabilities: [[Double]]) { try evaluate(SampleSet(samples)) }

    public func evaluate(_ set: SampleSet) throws -> (loss: Double, probabilities: [[Double]]) {
        model.store.isTraining = false
        let result = try Torch.withNoGrad {
            try Passes.evaluate(set, batchSize: config.batchSize * (parallel?.worldSize ?? 1), parallel: parallel, build: { Self.hostBatch($0) }) { batch in
                let (x, y) = try batchTensors(batch)
                let (l, p) = try loss(x, y)
                return (try l.item(), try p.floats())
            }
        }
        lastDataWait = result.wait
        return (result.loss, result.probabilities)
    }

    /// Feeds the validation loss to ReduceLROnPlateau and applies the new learning rate.
    public func endEpoch(validationLoss: Double?) throws {
        try optimizer.setLearningRate(schedule.step(epoch: epoch, metric: validationLoss))
    }

    // MARK: - Checkpoints

    typealias State = TrainingCheckpoint.State<ReduceLROnPlateau>

    /// Model, optimizer, schedule, epoch and RNG in one safetensors file, written atomically.
    public func saveCheckpoint(to path: String) throws {
        try TrainingCheckpoint.write(model.store.namedTensors, optimizer: optimizer,
                                     state: State(epoch: epoch, schedule: schedule, rngState: rng.state, config: config), model: nil, to: path)
    }

    /// Restores a checkpoint written by `saveCheckpoint` (the model's own weights load strictly).
    public func loadCheckpoint(from path: String) throws {
        let (weights, state) = try TrainingCheckpoint.read(path, model: nil, optimizer: optimizer, as: State.self)
        try model.store.load(weights)
        schedule = state.schedule
        try optimizer.setLearningRate(schedule.learningRate)
        epoch = state.epoch
        rng = SplitMix64(state: state.rngState)
    }
}
