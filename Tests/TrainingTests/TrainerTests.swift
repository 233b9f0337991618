import Anatomy
import Dataset
import Foundation
import TestSupport
import Testing
import Torch
import Training

@Suite(.serialized) struct TrainerTests {
    static let shape = [16, 32, 32]

    func config() -> TrainingConfig {
        var c = TrainingConfig()
        c.baseFilters = 4
        c.inputShape = Self.shape
        c.flipLeftRight = true
        c.seed = 17
        return c
    }

    func samples(_ n: Int, seed: UInt64) -> [Sample] {
        var g = SystemRandomNumberGeneratorSeeded(seed)
        return (0..<n).map { i in
            let input = (0..<(16 * 32 * 32)).map { _ in Float(g.next() % 1000) / 1000 }
            var labels = (0..<14).map { _ in g.next() % 5 == 0 }
            labels[13] = labels[..<13].contains(true)
            return Sample(id: "s\(i)", input: input, labels: labels)
        }
    }

    init() throws {
        _ = try engine()
        try Torch.setThreadCount(1)
    }

    /// Inputs read in the background: one that cannot be read ends the epoch with its own error
    /// (no hang, no partial step counted), and the trainer can still run an epoch afterwards.
    @Test func anUnreadableInputStopsTheEpochWithItsError() throws {
        let train = samples(6, seed: 3)
        let broken = SampleSet(ids: train.map(\.id), labels: train.map(\.labels)) { i in
            if train[i].id == "s4" { throw DatasetError(file: "cache/s4.f32", reason: "truncated") }
            return train[i].input
        }
        let t = try Trainer(config: config())
        #expect { try t.trainEpoch(broken) } throws: { ($0 as? DatasetError)?.file == "cache/s4.f32" }
        #expect(t.epoch == 0)
        #expect(try t.trainEpoch(train).isFinite)
        #expect(t.epoch == 1)
    }

    /// A batch's inputs are read on all cores: they come back in the batch's order, and where several
    /// cannot be read, the error is that of the first of them in the batch.
    @Test func aBatchIsReadInOrderAndItsFirstUnreadableInputIsTheError() throws {
        let set = SampleSet(ids: (0..<9).map { "s\($0)" }, labels: Array(repeating: [Bool](repeating: false, count: 14), count: 9)) { i in
            if i == 5 || i == 7 { throw DatasetError(file: "cache/s\(i).f32", reason: "truncated") }
            return [Float](repeating: Float(i), count: 1000)
        }
        #expect(try set.samples([8, 2, 4, 0, 6]).map { $0.input[999] } == [8, 2, 4, 0, 6])
        #expect(try set.samples([3]).map(\.id) == ["s3"])
        #expect { try set.samples([1, 7, 2, 5]) } throws: { ($0 as? DatasetError)?.file == "cache/s7.f32" }
    }

    @Test(arguments: [false, true])
    func resumedTrainingContinuesExactlyAsAnUninterruptedRun(channelsLast: Bool) throws {
        let train = samples(6, seed: 1), validation = samples(2, seed: 2)
        func config() -> TrainingConfig {
            var c = self.config()
            c.channelsLast = channelsLast
            return c
        }
        let a = try Trainer(config: config())
        var lossesA: [Double] = []
        for _ in 0..<3 {
            lossesA.append(try a.trainEpoch(train))
            try a.endEpoch(validationLoss: a.evaluate(validation).loss)
        }
        let b = try Trainer(config: config())
        _ = try b.trainEpoch(train)
        try b.endEpoch(validationLoss: b.evaluate(validation).loss)
        let path = "\(try temporaryDirectory())/checkpoint.safetensors"
        try b.saveCheckpoint(to: path)
        let c = try Trainer(config: config())
        try c.loadCheckpoint(from: path)
        #expect(c.epoch == 1)
        var lossesC: [Double] = []
        for _ in 0..<2 {
            lossesC.append(try c.trainEpoch(train))
            try c.endEpoch(validationLoss: c.evaluate(validation).loss)
        }
        #expect(lossesC == Array(lossesA[1...]), "\(lossesC) vs \(lossesA)")
        for (x, y) in zip(a.model.store.namedTensors, c.model.store.namedTensors) {
            #expect(try x.1.withUnsafeBytes { Array($0) } == y.1.withUnsafeBytes { Array($0) }, "\(x.0)")
        }
    }

    @Test func lossFallsOnAFixedBatch() throws {
        var c = config()
        c.flipLeftRight = false
        c.learningRate = 1e-2
        let t = try Trainer(config: c)
        let batch = samples(2, seed: 3)
        let first = try t.step(batch)
        var last = first
        for _ in 0..<40 { last = try t.step(batch) }
        // Two samples can be memorised: the loss must fall well below its start.
        #expect(last < first * 0.5, "loss \(first) → \(last)")
    }

    @Test func leftRightFlipSwapsLocationLabels() {
        var labels = Array(repeating: false, count: 14)
        labels[LocationLabel.leftMCA.rawValue] = true
        labels[LocationLabel.anteriorCommunicating.rawValue] = true
        labels[13] = true
        let input = (0..<(16 * 32 * 32)).map(Float.init)
        let s = Sample(id: "x", input: input, labels: labels)
        let f = s.flippedLeftRight(shape: Self.shape)
        #expect(f.labels[LocationLabel.rightMCA.rawValue] && !f.labels[LocationLabel.leftMCA.rawValue])
        #expect(f.labels[LocationLabel.anteriorCommunicating.rawValue] && f.labels[13])
        #expect(f.input[0] == 31 && f.input[31] == 0 && f.input[32] == 63)
        let back = f.flippedLeftRight(shape: Self.shape)
        #expect(back.input == input && back.labels == labels)
    }

    @Test func aFileThatIsNotACheckpointIsRefused() throws {
        let path = "\(try temporaryDirectory())/weights.safetensors"
        let t = try Trainer(config: config())
        try t.model.store.save(to: path)
        #expect(throws: TorchError.self) { try t.loadCheckpoint(from: path) }
    }
}

/// Deterministic test data without touching libtorch's generator.
struct SystemRandomNumberGeneratorSeeded: RandomNumberGenerator {
    var state: UInt64
    init(_ seed: UInt64) { state = seed &+ 0x1234_5678 }
    mutating func next() -> UInt64 {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return state >> 11
    }
}
