import Anatomy
import DICOM
import Dataset
import Dispatch
import Foundation
import Inference
import Metrics
import Reports
import Synth
import Training

/// `willis demo`: synthesise a training set and a held-out test set (another seed), train the
/// reference network for a bounded time, predict the test set, score it and write a report.
public struct DemoRun {
    public var folder: String
    public var trainCount = 64
    public var testCount = 32
    public var minutes = 8.0
    /// The reference network at the notebook's 64×128×128 costs 4.6 s per CPU training step on 2 cores
    /// (BENCHMARKS.md); the demo trains at half the size per axis to finish in minutes.
    public var inputShape = [32, 64, 64]
    public var log: (String) -> Void = { print($0) }

    public init(folder: String) { self.folder = folder }

    public struct Result { public var score: Double?; public var report: String; public var seconds: Double }

    public func run() throws -> Result {
        let start = DispatchTime.now().uptimeNanoseconds
        func elapsed() -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
        log("1/4 synthesising \(trainCount) training and \(testCount) held-out series (small)")
        try SynthDataset.generate(SynthOptions(count: trainCount, size: .small, seed: 1), into: "\(folder)/train")
        let testCases = try SynthDataset.generate(SynthOptions(count: testCount, size: .small, seed: 2), into: "\(folder)/test")
        log(String(format: "2/4 training the reference UNet3D at %@ (at most %.1f min)", inputShape.map(String.init).joined(separator: "×"), minutes))
        var config = TrainingConfig()
        config.inputShape = inputShape
        var run = TrainingRun(dataRoot: "\(folder)/train", output: "\(folder)/run", config: config)
        run.timeLimit = minutes * 60
        run.log = { log("    " + $0) }
        let records = try run.run()
        log("3/4 predicting the held-out series")
        let predictor = try Predictor(weights: "\(folder)/run/model.safetensors", inputShape: inputShape)
        let truth = try RSNATables.readLabels("\(folder)/test/train.csv")
        var rows: [(uid: String, probabilities: [Double])] = []
        var gallery: [HTMLReport.Case] = []
        for c in testCases {
            let series = try SeriesLoader().load("\(folder)/test/series/\(c.seriesInstanceUID)")
            let r = try predictor.predict(series)
            rows.append((r.uid, r.probabilities))
            if gallery.count < 6, let t = truth.first(where: { $0.seriesInstanceUID == r.uid }) {
                gallery.append(.init(uid: r.uid, modality: t.modality.rawValue, probabilities: r.probabilities, truth: t.labels, volume: series.volume))
            }
        }
        try Data(Submission.encode(rows).utf8).write(to: URL(fileURLWithPath: "\(folder)/submission.csv"))
        log("4/4 scoring and writing the report")
        let byUID = Dictionary(uniqueKeysWithValues: rows.map { ($0.uid, $0.probabilities) })
        let score = CompetitionScore(predictions: truth.map { byUID[$0.seriesInstanceUID] ?? [] }, truth: truth.map(\.labels))
        let report = HTMLReport(
            title: "Willis demo: reference UNet3D on synthetic angiography",
            score: score,
            epochs: records.map { .init(epoch: $0.epoch, trainLoss: $0.trainLoss, validationLoss: $0.validationLoss, score: $0.score) },
            cases: gallery,
            notes: ["Trained on \(trainCount) synthetic series (seed 1) for \(records.count) epoch(s); scored on \(testCount) held-out series (seed 2).",
                    "Reference mode: the notebook's network, loss and preprocessing, on correctly ordered HU volumes, at input "
                        + inputShape.map(String.init).joined(separator: "×") + " to fit the time budget on CPU."])
        try FileManager.default.createDirectory(atPath: "\(folder)/report", withIntermediateDirectories: true)
        let path = "\(folder)/report/index.html"
        try Data(try report.render().utf8).write(to: URL(fileURLWithPath: path))
        return Result(score: score.score, report: path, seconds: elapsed())
    }
}
