import Anatomy
import Dataset
import Dispatch
import Foundation
import Metrics
import Torch

/// `willis train`: an RSNA-layout folder → cached inputs → the training loop with validation by the
/// competition metric each epoch → checkpoints and a metrics log in `output`.
public struct TrainingRun {
    public var dataRoot: String
    public var output: String
    public var config: TrainingConfig
    public var folds = 5
    /// Which fold validates (the others train).
    public var validationFold = 0
    public var cacheRoot: String?
    public var resume = false
    /// Stop after the epoch that passes this many seconds of training (nil: run all epochs).
    public var timeLimit: Double?
    /// Where the network runs (batches are assembled on the CPU).
    public var device: Device = .cpu
    public var log: (String) -> Void = { print($0) }

    public init(dataRoot: String, output: String, config: TrainingConfig) {
        self.dataRoot = dataRoot
        self.output = output
        self.config = config
    }

    public struct EpochRecord: Codable, Sendable {
        public var epoch: Int
        public var trainLoss: Double
        public var validationLoss: Double
        public var score: Double?
        public var learningRate: Double
        public var seconds: Double
    }

    /// Runs to `config.epochs` (continuing from `output/last.safetensors` with `resume`).
    @discardableResult
    public func run() throws -> [EpochRecord] {
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        let labels = try RSNATables.readLabels("\(dataRoot)/train.csv")
        let onDisk = Set((try? FileManager.default.contentsOfDirectory(atPath: "\(dataRoot)/series")) ?? [])
        let missing = labels.filter { !onDisk.contains($0.seriesInstanceUID) }
        let unlisted = onDisk.subtracting(labels.map(\.seriesInstanceUID))
        if !missing.isEmpty { log("warning: \(missing.count) series in train.csv are missing under series/: \(missing.prefix(5).map(\.seriesInstanceUID).joined(separator: ", "))") }
        if !unlisted.isEmpty { log("warning: \(unlisted.count) series folders are not in train.csv") }
        let present = labels.filter { onDisk.contains($0.seriesInstanceUID) }
        let cache = PreprocessedCache(root: cacheRoot ?? "\(dataRoot)/.willis-cache", shape: config.inputShape)
        let start = DispatchTime.now().uptimeNanoseconds
        let failed = try cache.build(present.map(\.seriesInstanceUID), seriesRoot: "\(dataRoot)/series")
        for f in failed { log("skipped series \(f.uid): \(f.error)") }
        log(String(format: "cache ready: %d series in %.1f s (%@)", present.count - failed.count,
                   Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9, cache.folder))
        let usable = present.filter { s in !failed.contains { $0.uid == s.seriesInstanceUID } }
        let fold = Folds.assign(usable, folds: folds, seed: config.seed)
        func samples(_ list: [SeriesLabels]) throws -> [Sample] {
            try list.map { Sample(id: $0.seriesInstanceUID, input: try cache.load($0.seriesInstanceUID), labels: $0.labels) }
        }
        let trainSet = try samples(usable.filter { fold[$0.seriesInstanceUID] != validationFold })
        let validationSet = try samples(usable.filter { fold[$0.seriesInstanceUID] == validationFold })
        log("training on \(trainSet.count) series, validating on \(validationSet.count) (fold \(validationFold) of \(folds))")

        let trainer = try Trainer(config: config, device: device)
        let last = "\(output)/last.safetensors"
        if resume && FileManager.default.fileExists(atPath: last) {
            try trainer.loadCheckpoint(from: last)
            log("resumed from \(last) at epoch \(trainer.epoch)")
        }
        var records: [EpochRecord] = []
        var best = bestScore()
        let trainingStart = DispatchTime.now().uptimeNanoseconds
        while trainer.epoch < config.epochs {
            if let timeLimit, Double(DispatchTime.now().uptimeNanoseconds - trainingStart) / 1e9 > timeLimit {
                log("time limit of \(Int(timeLimit)) s reached after epoch \(trainer.epoch)")
                break
            }
            let t0 = DispatchTime.now().uptimeNanoseconds
            let trainLoss = try trainer.trainEpoch(trainSet)
            let (validationLoss, probabilities) = try trainer.evaluate(validationSet)
            let score = CompetitionScore(predictions: probabilities, truth: validationSet.map(\.labels)).score
            try trainer.endEpoch(validationLoss: validationLoss)
            let record = EpochRecord(epoch: trainer.epoch, trainLoss: trainLoss, validationLoss: validationLoss, score: score,
                                     learningRate: trainer.optimizer.learningRate,
                                     seconds: Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
            records.append(record)
            try appendLog(record)
            try trainer.saveCheckpoint(to: last)
            if let score, score > best {
                best = score
                try trainer.model.store.save(to: "\(output)/best-model.safetensors", metadata: ["epoch": String(trainer.epoch), "score": String(score)])
            }
            log(String(format: "epoch %d/%d  train loss %.4f  val loss %.4f  score %@  lr %.2g  %.1f s", trainer.epoch, config.epochs,
                       trainLoss, validationLoss, score.map { String(format: "%.4f", $0) } ?? "n/a", record.learningRate, record.seconds))
        }
        try trainer.model.store.save(to: "\(output)/model.safetensors")
        return records
    }

    func appendLog(_ record: EpochRecord) throws {
        let path = "\(output)/metrics.jsonl"
        var line = try JSONEncoder().encode(record)
        line.append(0x0A)
        if let handle = FileHandle(forWritingAtPath: path) {
            defer { try? handle.close() }
            try handle.seekToEnd()
            try handle.write(contentsOf: line)
        } else {
            try line.write(to: URL(fileURLWithPath: path))
        }
    }

    /// The best validation score logged so far (for resumed runs), or −∞.
    func bestScore() -> Double {
        guard let text = try? String(contentsOfFile: "\(output)/metrics.jsonl", encoding: .utf8) else { return -.infinity }
        return text.split(separator: "\n").compactMap { try? JSONDecoder().decode(EpochRecord.self, from: Data($0.utf8)).score }.max() ?? -.infinity
    }
}
