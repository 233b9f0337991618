import Anatomy
import Dataset
import Foundation
import Inference
import Scoring
import Preprocessing
import Synth
import TestSupport
import Testing
import Torch
import Training

/// synth → train 2 epochs → predict → evaluate, on a tiny synthetic set.
@Suite(.serialized) struct EndToEndTests {
    init() throws { _ = try engine() }

    @Test(arguments: Preparation.Mode.allCases)
    func synthTrainPredictEvaluate(mode: Preparation.Mode) throws {
        let root = try temporaryDirectory()
        let cases = try SynthDataset.generate(SynthOptions(count: 8, size: .small, seed: 12), into: "\(root)/data")
        var config = TrainingConfig()
        config.epochs = 2
        config.baseFilters = 4
        config.inputShape = [16, 32, 32]
        config.preparation.mode = mode
        config.preparation.spacing = 4.8
        var run = TrainingRun(dataRoot: "\(root)/data", output: "\(root)/run", config: config)
        run.folds = 4
        run.log = { _ in }
        let records = try run.run()
        #expect(records.map(\.epoch) == [1, 2])
        #expect(records.allSatisfy { $0.trainLoss.isFinite && ($0.validationLoss ?? .nan).isFinite })
        let log = try String(contentsOfFile: "\(root)/run/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(log.count == 2)
        #expect(records.allSatisfy { ($0.dataWaitFraction ?? -1) >= 0 && ($0.dataWaitFraction ?? 2) <= 1 })
        // The curves are a PNG of the expected size.
        let png = try Data(contentsOf: URL(fileURLWithPath: "\(root)/run/training-curves.png"))
        #expect(png.prefix(8) == Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]))
        #expect(png.count > 1000)
        // The cache is named by the settings; improved mode keeps each input's grid in the patient.
        let cacheFolder = "\(root)/data/.willis-cache/\(config.preparation.cacheKey)"
        let cached = try FileManager.default.contentsOfDirectory(atPath: cacheFolder)
        #expect(cached.filter { $0.hasSuffix(".f32") }.count == 8)
        #expect(cached.filter { $0.hasSuffix(".json") && !$0.hasSuffix(".targets.json") }.count == (mode == .improved ? 8 : 0))
        #expect(cached.filter { $0.hasSuffix(".targets.json") }.count == (mode == .improved ? 8 : 0))

        // Prediction prepares series as training did, from the weights' metadata alone.
        let predictor = try Predictor(weights: "\(root)/run/model.safetensors")
        #expect(predictor.preparation == config.preparation)
        var rows: [(uid: String, probabilities: [Double])] = []
        for c in cases {
            let r = try predictor.predict(series: "\(root)/data/series/\(c.seriesInstanceUID)")
            #expect(r.uid == c.seriesInstanceUID)
            #expect(r.probabilities.count == 14 && r.probabilities.allSatisfy { $0 > 0 && $0 < 1 })
            rows.append((r.uid, r.probabilities))
        }
        try Data(Submission.encode(rows).utf8).write(to: URL(fileURLWithPath: "\(root)/submission.csv"))
        let read = try Submission.read("\(root)/submission.csv")
        #expect(read.count == 8)
        for (uid, p) in rows { #expect(zip(read[uid] ?? [], p).allSatisfy { abs($0 - $1) < 1e-6 }) }
        // The score from the file equals the score computed directly.
        let truth = try RSNATables.readLabels("\(root)/data/train.csv")
        let direct = CompetitionScore(predictions: truth.map { uid in rows.first { $0.uid == uid.seriesInstanceUID }?.probabilities ?? [] },
                                      truth: truth.map(\.labels))
        let fromFile = CompetitionScore(predictions: truth.map { read[$0.seriesInstanceUID] ?? [] }, truth: truth.map(\.labels))
        if let a = direct.score, let b = fromFile.score { #expect(abs(a - b) < 1e-4) }
        // A second run resumes instead of starting again.
        var again = run
        again.resume = true
        again.config.epochs = 3
        let more = try again.run()
        #expect(more.map(\.epoch) == [3])
    }

    /// Validating every second epoch: epoch 1 logs no validation loss, score or vessel Dice (also not in
    /// metrics.jsonl), epoch 2 is validated, and so is epoch 3, the last, although 3 is not a multiple of 2.
    @Test func validateEveryLeavesTheOtherEpochsUnvalidated() throws {
        let root = try temporaryDirectory()
        try SynthDataset.generate(SynthOptions(count: 8, size: .small, seed: 12), into: "\(root)/data")
        var config = TrainingConfig()
        config.epochs = 3
        config.validateEvery = 2
        config.baseFilters = 4
        config.inputShape = [16, 32, 32]
        var run = TrainingRun(dataRoot: "\(root)/data", output: "\(root)/run", config: config)
        run.folds = 4
        var lines: [String] = []
        run.log = { lines.append($0) }
        let records = try run.run()
        #expect(records.map(\.epoch) == [1, 2, 3])
        #expect(records.map { $0.validationLoss != nil } == [false, true, true])
        #expect(records[0].score == nil && records[0].vesselDice == nil)
        #expect(records.allSatisfy { $0.trainLoss.isFinite })
        let log = try String(contentsOfFile: "\(root)/run/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(log.count == 3 && !log[0].contains("validationLoss") && log[1].contains("validationLoss"))
        #expect(lines.contains { $0.hasPrefix("epoch 1/3") && $0.contains("not validated") })
        #expect(lines.contains { $0.hasPrefix("epoch 3/3") && $0.contains("val loss") })

        // A run cut short by its time limit validates the epoch it stops after, whatever validateEvery says.
        var budgeted = run
        budgeted.output = "\(root)/budgeted"
        budgeted.config.validateEvery = 5
        budgeted.timeLimit = 1e-6
        lines = []
        let cut = try budgeted.run()
        #expect(cut.map(\.epoch) == [1] && cut[0].validationLoss != nil)
        #expect(lines.contains { $0.contains("time limit of 0 s reached after epoch 1") })
    }

    /// A series whose files are corrupt is skipped with a message naming it; training goes on with the rest.
    @Test func aCorruptSeriesIsSkippedAndReported() throws {
        let root = try temporaryDirectory()
        let cases = try SynthDataset.generate(SynthOptions(count: 6, size: .small, seed: 13), into: "\(root)/data")
        let broken = cases[1].seriesInstanceUID
        let folder = "\(root)/data/series/\(broken)"
        for name in try FileManager.default.contentsOfDirectory(atPath: folder) {
            let path = "\(folder)/\(name)"
            let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
            try bytes.prefix(bytes.count / 3).write(to: URL(fileURLWithPath: path))
        }
        var config = TrainingConfig()
        config.epochs = 1
        config.baseFilters = 4
        config.inputShape = [16, 32, 32]
        var run = TrainingRun(dataRoot: "\(root)/data", output: "\(root)/run", config: config)
        run.folds = 2
        final class Lines: @unchecked Sendable { var all: [String] = [] }
        let lines = Lines()
        run.log = { lines.all.append($0) }
        let records = try run.run()
        #expect(records.count == 1)
        #expect(lines.all.contains { $0.hasPrefix("skipped series \(broken):") }, "\(lines.all)")
        #expect(lines.all.contains { $0.contains("cache ready: 5 series") }, "\(lines.all)")
    }

    @Test func malformedSubmissionsNameTheLine() throws {
        let path = "\(try temporaryDirectory())/s.csv"
        let bad = Submission.header + "\nabc," + Array(repeating: "0.5", count: 13).joined(separator: ",") + ",1.5\n"
        try bad.write(toFile: path, atomically: false, encoding: .utf8)
        #expect { try Submission.read(path) } throws: { ($0 as? DatasetError)?.line == 2 }
    }
}
