import Anatomy
import Dataset
import Foundation
import Inference
import Metrics
import Synth
import TestSupport
import Testing
import Torch
import Training

/// synth → train 2 epochs → predict → evaluate, on a tiny synthetic set.
@Suite(.serialized) struct EndToEndTests {
    init() throws { try engine() }

    @Test func synthTrainPredictEvaluate() throws {
        let root = try temporaryDirectory()
        let cases = try SynthDataset.generate(SynthOptions(count: 8, size: .small, seed: 12), into: "\(root)/data")
        var config = TrainingConfig()
        config.epochs = 2
        config.baseFilters = 4
        config.inputShape = [16, 32, 32]
        var run = TrainingRun(dataRoot: "\(root)/data", output: "\(root)/run", config: config)
        run.folds = 4
        run.log = { _ in }
        let records = try run.run()
        #expect(records.map(\.epoch) == [1, 2])
        #expect(records.allSatisfy { $0.trainLoss.isFinite && $0.validationLoss.isFinite })
        let log = try String(contentsOfFile: "\(root)/run/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(log.count == 2)

        let predictor = try Predictor(weights: "\(root)/run/model.safetensors", inputShape: config.inputShape)
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

    @Test func malformedSubmissionsNameTheLine() throws {
        let path = "\(try temporaryDirectory())/s.csv"
        let bad = Submission.header + "\nabc," + Array(repeating: "0.5", count: 13).joined(separator: ",") + ",1.5\n"
        try bad.write(toFile: path, atomically: true, encoding: .utf8)
        #expect { try Submission.read(path) } throws: { ($0 as? DatasetError)?.line == 2 }
    }
}
