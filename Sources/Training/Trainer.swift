import Anatomy
import Dataset
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
    /// Drives shuffling and augmentation; saved in checkpoints so a resumed run continues identically.
    var rng: SplitMix64
    let device: Device

    public init(config: TrainingConfig, device: Device = .cpu) throws {
        self.config = config
        self.device = device
        try Torch.manualSeed(config.seed)
        model = try UNet3D(baseFilters: config.baseFilters, device: device)
        optimizer = try Optimizer(.adam(), parameters: model.store.parameters, learningRate: config.learningRate)
        schedule = ReduceLROnPlateau(learningRate: config.learningRate, factor: config.plateauFactor, patience: config.plateauPatience)
        rng = SplitMix64(seed: config.seed, stream: 1)
    }

    func batchTensors(_ batch: [Sample]) throws -> (Tensor, Tensor) {
        let shape = config.inputShape
        let x = try Tensor(batch.flatMap(\.input), shape: [batch.count, 1] + shape, device: device)
        let y = try Tensor(batch.flatMap { $0.labels.map { $0 ? Float(1) : 0 } }, shape: [batch.count, 14], device: device)
        return (x, y)
    }

    func loss(_ x: Tensor, _ y: Tensor) throws -> (loss: Tensor, probabilities: Tensor) {
        switch config.loss {
        case .bceOnProbabilities:
            let p = try model(x)
            return (try p.binaryCrossEntropy(target: y), p)
        case .bceWithLogits:
            let z = try model.logits(x)
            return (try z.binaryCrossEntropyWithLogits(target: y), try z.sigmoid())
        }
    }

    /// One optimizer step on `batch`; returns the loss.
    public func step(_ batch: [Sample]) throws -> Double {
        model.store.isTraining = true
        let (x, y) = try batchTensors(batch)
        try optimizer.zeroGrad()
        let l = try loss(x, y).loss
        try l.backward()
        try optimizer.step()
        return try l.item()
    }

    /// One epoch over `samples` in a shuffled order; returns the mean batch loss.
    public func trainEpoch(_ samples: [Sample]) throws -> Double {
        var order = Array(samples.indices)
        order.shuffle(using: &rng)
        var total = 0.0, batches = 0
        for start in stride(from: 0, to: order.count, by: config.batchSize) {
            var batch = order[start..<min(order.count, start + config.batchSize)].map { samples[$0] }
            if !config.augmentation.isIdentity {
                batch = batch.map { config.augmentation.apply($0, shape: config.inputShape, using: &rng) }
            }
            total += try step(batch)
            batches += 1
        }
        epoch += 1
        return batches > 0 ? total / Double(batches) : 0
    }

    /// Mean loss and per-sample probabilities [N][14] in evaluation mode.
    public func evaluate(_ samples: [Sample]) throws -> (loss: Double, probabilities: [[Double]]) {
        model.store.isTraining = false
        var total = 0.0, batches = 0
        var probabilities: [[Double]] = []
        try Torch.withNoGrad {
            for start in stride(from: 0, to: samples.count, by: config.batchSize) {
                let batch = Array(samples[start..<min(samples.count, start + config.batchSize)])
                let (x, y) = try batchTensors(batch)
                let (l, p) = try loss(x, y)
                total += try l.item()
                batches += 1
                let values = try p.floats()
                for b in 0..<batch.count { probabilities.append(values[(b * 14)..<((b + 1) * 14)].map(Double.init)) }
            }
        }
        return (batches > 0 ? total / Double(batches) : 0, probabilities)
    }

    /// Feeds the validation loss to ReduceLROnPlateau and applies the new learning rate.
    public func endEpoch(validationLoss: Double) throws {
        try optimizer.setLearningRate(schedule.step(epoch: epoch, metric: validationLoss))
    }

    // MARK: - Checkpoints

    struct State: Codable {
        var epoch: Int
        var schedule: ReduceLROnPlateau
        var rngState: UInt64
        var config: TrainingConfig
    }

    /// Model, optimizer, schedule, epoch and RNG in one safetensors file, written atomically.
    public func saveCheckpoint(to path: String) throws {
        let state = State(epoch: epoch, schedule: schedule, rngState: rng.state, config: config)
        let json = String(decoding: try JSONEncoder().encode(state), as: UTF8.self)
        let optimizerBytes = [UInt8](try optimizer.stateData())
        var tensors = model.store.namedTensors
        tensors.append(("__optimizer_state__", try Tensor(optimizerBytes, shape: [optimizerBytes.count])))
        try SafeTensors.write(tensors, metadata: ["willis_training_state": json], to: path)
    }

    /// Restores a checkpoint written by `saveCheckpoint` (the model's own weights load strictly).
    public func loadCheckpoint(from path: String) throws {
        let file = try SafeTensorsFile(path: path)
        guard let json = file.metadata["willis_training_state"],
              let state = try? JSONDecoder().decode(State.self, from: Data(json.utf8)) else {
            throw TorchError.safetensors(path: path, reason: "not a Willis training checkpoint (no training state)")
        }
        var weights: [String: Tensor] = [:]
        for name in file.names where name != "__optimizer_state__" { weights[name] = try file.tensor(name) }
        try model.store.load(weights)
        try optimizer.loadState(Data(try file.tensor("__optimizer_state__").toArray(of: UInt8.self)))
        schedule = state.schedule
        try optimizer.setLearningRate(schedule.learningRate)
        epoch = state.epoch
        rng = SplitMix64(state: state.rngState)
    }
}
