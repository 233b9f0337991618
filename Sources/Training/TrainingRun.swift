import Anatomy
import AtomicFile
import Dataset
import Dispatch
import Foundation
import Scoring
import Preprocessing
import Reports
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
    /// Start from these weights (fine-tuning) unless a checkpoint is resumed.
    public var initialWeights: String?
    /// Stop after the epoch whose training pass ends past this many seconds, validating it (nil: run all epochs).
    public var timeLimit: Double?
    /// Where the network runs (batches are assembled on the CPU).
    public var device: Device = .cpu
    /// The CPU's feature flags, which decide whether bf16 runs natively (`MixedPrecision.usable`).
    public var cpuFlags: Set<String>? = HostCPU.flags
    public var log: (String) -> Void = { print($0) }
    /// Called as the input cache fills: (series done, series to do).
    public var cacheProgress: @Sendable (Int, Int) -> Void = { _, _ in }
    /// Called after each training step: (epoch, batches done, batches in the epoch).
    public var batchProgress: (Int, Int, Int) -> Void = { _, _, _ in }
    /// Data-parallel training over a process group (see `DataParallel`). Rank 0 alone builds the input
    /// cache and writes checkpoints, logs, plots and weights; every rank resumes from the same
    /// checkpoint, whatever the world size was when it was written.
    public var parallel: DataParallel?
    var isLeader: Bool { parallel?.isLeader ?? true }

    public init(dataRoot: String, output: String, config: TrainingConfig) {
        self.dataRoot = dataRoot
        self.output = output
        self.config = config
    }

    public struct EpochRecord: Codable, Sendable {
        public var epoch: Int
        public var trainLoss: Double
        /// Nil when the epoch was not validated (`TrainingConfig.validateEvery`).
        public var validationLoss: Double?
        public var score: Double?
        public var learningRate: Double
        public var seconds: Double
        /// Share of the training pass spent waiting for input batches (0: never).
        public var dataWaitFraction: Double?
        /// Seconds of the training pass alone (`seconds` includes validation).
        public var trainSeconds: Double?
        /// Detector: mean Dice of the vessel head on the labelled validation series.
        public var vesselDice: Double?
        /// Data-parallel runs: the processes, seconds spent all-reducing gradients, and whether every
        /// rank's weights were bit-identical at the end of the epoch.
        public var worldSize: Int?
        public var allReduceSeconds: Double?
        public var replicasIdentical: Bool?
    }

    /// Runs to `config.epochs` (continuing from `output/last.safetensors` with `resume`).
    @discardableResult
    public func run() throws -> [EpochRecord] {
        let log: (String) -> Void = isLeader ? self.log : { _ in }
        if isLeader { try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true) }
        let labels = try RSNATables.readLabels("\(dataRoot)/train.csv")
        let onDisk = Set((try? FileManager.default.contentsOfDirectory(atPath: "\(dataRoot)/series")) ?? [])
        let missing = labels.filter { !onDisk.contains($0.seriesInstanceUID) }
        let unlisted = onDisk.subtracting(labels.map(\.seriesInstanceUID))
        if !missing.isEmpty { log("warning: \(missing.count) series in train.csv are missing under series/: \(missing.prefix(5).map(\.seriesInstanceUID).joined(separator: ", "))") }
        if !unlisted.isEmpty { log("warning: \(unlisted.count) series folders are not in train.csv") }
        let present = labels.filter { onDisk.contains($0.seriesInstanceUID) }
        try config.preparation.validate()
        let cache = PreprocessedCache(root: cacheRoot ?? "\(dataRoot)/.willis-cache", preparation: config.preparation)
        let items = present.map { (uid: $0.seriesInstanceUID, modality: $0.modality.rawValue) }
        let toBuild = cache.missing(items).count
        let start = DispatchTime.now().uptimeNanoseconds
        let localizers = config.preparation.mode == .improved ? try Self.localizers(dataRoot) : [:]
        var failed: [(uid: String, error: String)] = []
        if isLeader {
            failed = try cache.build(items, seriesRoot: "\(dataRoot)/series", localizers: localizers,
                                     segmentationRoot: "\(dataRoot)/segmentations", progress: cacheProgress).map { ($0.uid, $0.error) }
        }
        if let parallel {
            // The other ranks wait for rank 0's cache, then see the same failures it did: what is still missing.
            try parallel.group.barrier()
            if !isLeader { failed = cache.missing(items).map { ($0.uid, "not prepared by rank 0") } }
        }
        for f in failed { log("skipped series \(f.uid): \(f.error)") }
        let buildSeconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let perSeries: Double = toBuild > 0 ? buildSeconds / Double(toBuild) : 0
        log("cache ready: \(present.count - failed.count) series, \(toBuild - failed.count) prepared now in "
            + String(format: "%.1f s (%.2f s per series", buildSeconds, perSeries)
            + " on \(ProcessInfo.processInfo.activeProcessorCount) threads), \(config.preparation.mode.rawValue) mode (\(cache.folder))")
        let failedUIDs = Set(failed.map(\.uid))
        let usable = present.filter { !failedUIDs.contains($0.seriesInstanceUID) }
        let fold = Folds.assign(usable, folds: folds, seed: config.seed)
        // Inputs stay on disk (memory-mapped) and are read per batch by the background loader.
        let detector = config.model == .detector
        if detector && config.preparation.mode != .improved {
            throw DatasetError(file: dataRoot, reason: "the detector trains on improved-mode inputs: set preprocessing to improved")
        }
        func samples(_ list: [SeriesLabels]) -> SampleSet {
            let uids = list.map(\.seriesInstanceUID)
            var set = SampleSet(ids: uids, labels: list.map(\.labels), input: { try cache.load(uids[$0]) })
            set.inputSubdivision = config.preparation.inputSubdivision
            // Balanced sampling reads the modalities, the detector also its modality input.
            let modalities = list.map { row in Modality.allCases.firstIndex(of: row.modality) }
            set.modalities = modalities
            guard detector else { return set }
            return set.withTargets(modalities: modalities) { try cache.targets(uids[$0]) }
        }
        let trainSet = samples(usable.filter { fold[$0.seriesInstanceUID] != validationFold })
        let validationSet = samples(usable.filter { fold[$0.seriesInstanceUID] == validationFold })
        var drawing = ""
        switch config.sampling {
        case .uniform: break
        case .balanced: drawing = "; each epoch draws \(trainSet.count) of them balanced across modalities and locations"
        case .weighted:
            let listed = trainSet.ids.filter { config.seriesWeights[$0] != nil }
            let total = trainSet.ids.reduce(0.0) { $0 + (config.seriesWeights[$1] ?? 1) }
            guard !config.seriesWeights.isEmpty, total > 0 else {
                throw DatasetError(file: dataRoot, reason: config.seriesWeights.isEmpty
                    ? "weighted sampling needs series weights (--series-weights or series_weights)"
                    : "every training series has weight 0 in the series weights")
            }
            let heaviest = trainSet.ids.map { config.seriesWeights[$0] ?? 1 }.max() ?? 0
            drawing = "; each epoch draws \(trainSet.count) of them in proportion to the series weights ("
                + "\(listed.count) listed, the rest weigh 1; \(config.seriesWeights.count - listed.count) listed series are not among them; "
                + String(format: "mean weight %.3g, largest %.3g)", total / Double(trainSet.count), heaviest)
        }
        log("training on \(trainSet.count) series, validating on \(validationSet.count) (fold \(validationFold) of \(folds))" + drawing)
        // Fitted to the training fold only, so the validation scores are honest.
        var weightsMetadata: [String: String] = [:]
        let prior = detector ? try Self.fitLocationPrior(cache: cache, uids: trainSet.ids, preparation: config.preparation) : nil
        if let prior {
            weightsMetadata[LocationPrior.metadataKey] = prior.json
            log("location prior fitted to \(prior.components.map(\.count).reduce(0, +)) localizer points of the training series; validation reads the heatmap's peaks with it")
        }

        // The trainer writes its precision into the weights, so a fallback to fp32 is recorded as fp32.
        var trainerConfig = config
        if detector, let note = MixedPrecision.usable(config.detector.precision?.autocast, on: device, cpuFlags: cpuFlags).note {
            log("warning: \(note)")
            trainerConfig.detector.precision = .fp32
        }
        let trainer: EpochTrainer = config.model == .detector ? try DetectorTrainer(config: trainerConfig, device: device)
                                                              : try Trainer(config: config, device: device)
        if let prior, let detectorTrainer = trainer as? DetectorTrainer { detectorTrainer.readout = CandidateReadout(prior: prior) }
        if isLeader { trainer.onBatch = { [batchProgress, weak trainer] done, total in batchProgress((trainer?.epoch ?? 0) + 1, done, total) } }
        let last = "\(output)/last.safetensors"
        if resume && FileManager.default.fileExists(atPath: last) {
            try trainer.loadCheckpoint(from: last)
            log("resumed from \(last) at epoch \(trainer.epoch)")
        } else if let initialWeights {
            let notes = try trainer.initialise(from: initialWeights)
            log("starting from the weights in \(initialWeights)" + (notes.isEmpty ? "" : ": " + notes.joined(separator: "; ")))
        }
        if let parallel {
            trainer.parallel = parallel
            try trainer.synchronizeReplicas()
            log("data-parallel over \(parallel.worldSize) processes (\(parallel.group.backend.rawValue)): batch \(config.batchSize) per process, \(config.batchSize * parallel.worldSize) in all")
        }
        var records: [EpochRecord] = []
        var best = bestScore()
        let trainingStart = DispatchTime.now().uptimeNanoseconds
        var overTime = false
        while trainer.epoch < config.epochs && !overTime {
            let t0 = DispatchTime.now().uptimeNanoseconds
            parallel?.resetTimers()
            let trainLoss: Double
            do { trainLoss = try trainer.trainEpoch(trainSet) } catch let diverged as TrainingDiverged {
                throw TrainingDiverged(place: "epoch \(trainer.epoch + 1), " + diverged.place, loss: diverged.loss, remedy: divergenceRemedy(trainerConfig))
            }
            let trainSeconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            let wait = trainer.lastDataWait.fraction
            overTime = timeLimit.map { Double(DispatchTime.now().uptimeNanoseconds - trainingStart) / 1e9 > $0 } ?? false
            // Clocks differ between ranks; they stop together when any of them is over time.
            if let parallel { overTime = try parallel.group.reduce(overTime ? 1 : 0, .max) > 0 }
            // Every rank decides alike, so a data-parallel validation's collectives stay matched. The run's
            // last epoch (the schedule's, or the one that passes the time limit) is always validated.
            let validating = trainer.epoch % max(1, config.validateEvery) == 0 || trainer.epoch == config.epochs || overTime
            var validationLoss: Double?, score: Double?
            if validating {
                // Checked before any of the epoch's files: the last step can leave NaN weights behind a
                // finite loss, and they would score NaN.
                let diverged = TrainingDiverged(place: "the validation after epoch \(trainer.epoch)", loss: .nan, remedy: divergenceRemedy(trainerConfig))
                let (loss, probabilities): (Double, [[Double]])
                do { (loss, probabilities) = try trainer.evaluate(validationSet) } catch is TrainingDiverged { throw diverged }
                guard loss.isFinite else { throw TrainingDiverged(place: diverged.place, loss: loss, remedy: diverged.remedy) }
                validationLoss = loss
                score = CompetitionScore(predictions: probabilities, truth: validationSet.labels).score
            }
            try trainer.endEpoch(validationLoss: validationLoss)
            var record = EpochRecord(epoch: trainer.epoch, trainLoss: trainLoss, validationLoss: validationLoss, score: score,
                                     learningRate: trainer.learningRate,
                                     seconds: Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9, dataWaitFraction: wait)
            record.trainSeconds = trainSeconds
            record.vesselDice = validating ? trainer.validationVesselDice : nil
            if let parallel {
                record.worldSize = parallel.worldSize
                record.allReduceSeconds = parallel.reduceSeconds
                let identical = try parallel.replicasAgree(trainer.replicatedTensors)
                record.replicasIdentical = identical
                guard identical else {
                    throw DistributedError.collective(op: "replica check", rank: parallel.rank, message: "the ranks' weights differ after epoch \(trainer.epoch)")
                }
            }
            records.append(record)
            guard isLeader else { continue }
            // Checkpoint first: if it cannot be written, the log does not claim an epoch a resume would redo.
            try trainer.saveCheckpoint(to: last)
            try appendLog(record)
            if let score, score > best {
                best = score
                try saveWeights(trainer, to: "\(output)/best-model.safetensors",
                                extra: weightsMetadata.merging(["epoch": String(trainer.epoch), "score": String(score)]) { $1 })
            }
            try writeCurves()
            let scoreText = score.map { String(format: "%.4f", $0) } ?? "n/a"
            let validationText = validationLoss.map { String(format: "val loss %.4f  score ", $0) + scoreText } ?? "not validated"
            log("epoch \(trainer.epoch)/\(config.epochs)  " + String(format: "train loss %.4f  ", trainLoss) + validationText + "  " + (record.vesselDice.map { String(format: "vessel Dice %.3f  ", $0) } ?? "") + String(format: "lr %.2g  %.1f s (training %.1f s)  data wait %.1f%%", record.learningRate, record.seconds, trainSeconds, wait * 100)
                + (record.allReduceSeconds.map { String(format: "  all-reduce %.2f s, replicas identical", $0) } ?? ""))
            if overTime && trainer.epoch < config.epochs { log("time limit of \(Int(timeLimit ?? 0)) s reached after epoch \(trainer.epoch)") }
        }
        if isLeader { try saveWeights(trainer, to: "\(output)/model.safetensors", extra: weightsMetadata) }
        try parallel?.group.barrier()
        return records
    }

    /// What to try when a run's loss stops being finite; `config` is the trainer's (after any fallback to fp32).
    func divergenceRemedy(_ config: TrainingConfig) -> String {
        if config.model == .detector && config.detector.precision == .bf16 {
            return "--precision fp32 (the steps ran under bf16 autocast on \(device == .cpu ? HostCPU.model : "\(device)"))"
        }
        return String(format: "a lower learning rate (now %g)", config.learningRate)
    }

    /// The network's weights under the notebook's state_dict names, with how inputs were prepared, so
    /// `willis predict` prepares series the same way.
    func saveWeights(_ trainer: EpochTrainer, to path: String, extra: [String: String] = [:]) throws {
        var metadata = extra
        metadata[Preparation.metadataKey] = config.preparation.json
        try trainer.saveWeights(to: path, metadata: metadata)
    }

    /// train_localizers.csv of an RSNA folder by series (empty when the folder has none).
    static func localizers(_ dataRoot: String) throws -> [String: [LocalizerPoint]] {
        var out: [String: [LocalizerPoint]] = [:]
        guard FileManager.default.fileExists(atPath: "\(dataRoot)/train_localizers.csv") else { return out }
        for p in try RSNATables.readLocalizers("\(dataRoot)/train_localizers.csv") { out[p.seriesInstanceUID, default: []].append(p) }
        return out
    }

    /// The location prior of the localizer points placed in the cached series `uids` (nil: none placed).
    public static func fitLocationPrior(cache: PreprocessedCache, uids: [String], preparation: Preparation) throws -> LocationPrior? {
        try fitLocationPrior([(cache, uids)], preparation: preparation)
    }

    /// The location prior of the localizer points placed in the cached series of several folders.
    public static func fitLocationPrior(_ folders: [(cache: PreprocessedCache, uids: [String])], preparation: Preparation) throws -> LocationPrior? {
        var points: [(position: [Double], location: LocationLabel)] = []
        let grid = preparation.cropGrid
        for (cache, uids) in folders {
            for uid in uids {
                for p in try cache.detectionTargets(uid).points {
                    points.append((grid.position(i: p.i, j: p.j, k: p.k), p.location))
                }
            }
        }
        return points.isEmpty ? nil : try LocationPrior.fit(points)
    }

    /// Every epoch logged so far (a resumed run's included).
    func loggedEpochs() -> [EpochRecord] {
        guard let text = try? String(contentsOfFile: "\(output)/metrics.jsonl", encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { try? JSONDecoder().decode(EpochRecord.self, from: Data($0.utf8)) }
    }

    /// `training-curves.png`: losses and the validation score per epoch.
    func writeCurves() throws {
        let epochs = loggedEpochs()
        var losses = LinePlot(title: "Training curves", xLabel: "epoch", yLabel: "loss / score", series: [
            .init(name: "train loss", color: RGB(31, 119, 180), points: epochs.map { (Double($0.epoch), $0.trainLoss) }),
            .init(name: "validation loss", color: RGB(255, 127, 14), points: epochs.compactMap { e in e.validationLoss.map { (Double(e.epoch), $0) } }),
            .init(name: "validation score", color: RGB(44, 160, 44), points: epochs.compactMap { e in e.score.map { (Double(e.epoch), $0) } }),
        ])
        losses.integerX = true
        try AtomicFile.write(try losses.png(), to: "\(output)/training-curves.png")
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
    func bestScore() -> Double { loggedEpochs().compactMap(\.score).max() ?? -.infinity }
}
