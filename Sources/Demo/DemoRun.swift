import Anatomy
import DICOM
import Dataset
import Dispatch
import Foundation
import Inference
import Scoring
import Preprocessing
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
    public var preparation = Preparation(mode: .reference, shape: [32, 64, 64])
    public var inputShape: [Int] { preparation.shape }
    public var log: (String) -> Void = { print($0) }

    public init(folder: String) { self.folder = folder }

    public struct Result { public var score: Double?; public var report: String; public var seconds: Double }

    public func run() throws -> Result {
        let start = DispatchTime.now().uptimeNanoseconds
        func elapsed() -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
        log("1/4 synthesising \(trainCount) training and \(testCount) held-out series (small)")
        try SynthDataset.generate(SynthOptions(count: trainCount, size: .small, seed: 1), into: "\(folder)/train")
        let testCases = try SynthDataset.generate(SynthOptions(count: testCount, size: .small, seed: 2), into: "\(folder)/test")
        log(String(format: "2/4 training the reference UNet3D at %@, %@ preprocessing (at most %.1f min)",
                   inputShape.map(String.init).joined(separator: "×"), preparation.mode.rawValue, minutes))
        var config = TrainingConfig()
        config.preparation = preparation
        var run = TrainingRun(dataRoot: "\(folder)/train", output: "\(folder)/run", config: config)
        run.timeLimit = minutes * 60
        run.log = { log("    " + $0) }
        let records = try run.run()
        log("3/4 predicting the held-out series")
        let weights = "\(folder)/run/model.safetensors"
        let predictor = try Predictor(weights: weights)
        let truth = try RSNATables.readLabels("\(folder)/test/train.csv")
        // The same path as `willis predict --results`, so that `willis serve` can show the demo's results.
        let results = ResultsFolder("\(folder)/results")
        try? FileManager.default.removeItem(atPath: results.seriesRoot)
        let absolute = URL(fileURLWithPath: weights).standardizedFileURL.path
        try results.writeRun(RunInfo(weights: [absolute], preparation: predictor.preparation, setup: PredictorSetup(weights: [absolute])))
        var pipeline = BatchPrediction(workers: 2, queueDepth: 2)
        pipeline.results = results
        var rows: [(uid: String, probabilities: [Double])] = []
        var failures: [String] = []
        pipeline.run(testCases.map { "\(folder)/test/series/\($0.seriesInstanceUID)" }, predictor: predictor,
                     loader: SeriesLoader(options: SeriesLoader.Options(includePHI: true))) { _, outcome in
            if let uid = outcome.uid, let p = outcome.probabilities { rows.append((uid, p)) } else { failures.append("\(outcome.folder): \(outcome.error ?? "")") }
        }
        if let first = failures.first { throw DatasetError(file: first, reason: "a synthetic series could not be predicted") }
        try Data(Submission.encode(rows).utf8).write(to: URL(fileURLWithPath: results.submissionPath))
        var gallery: [HTMLReport.Case] = []
        for (uid, probabilities) in rows.prefix(6) {
            guard let t = truth.first(where: { $0.seriesInstanceUID == uid }) else { continue }
            let series = try SeriesLoader().load("\(folder)/test/series/\(uid)")
            gallery.append(.init(uid: uid, modality: t.modality.rawValue, probabilities: probabilities, truth: t.labels, volume: series.volume))
        }
        try Data(Submission.encode(rows).utf8).write(to: URL(fileURLWithPath: "\(folder)/submission.csv"))
        log("4/4 scoring and writing the report")
        let byUID = Dictionary(uniqueKeysWithValues: rows.map { ($0.uid, $0.probabilities) })
        let score = CompetitionScore(predictions: truth.map { byUID[$0.seriesInstanceUID] ?? [] }, truth: truth.map(\.labels))
        try FileManager.default.createDirectory(atPath: "\(folder)/report", withIntermediateDirectories: true)
        var report = HTMLReport(
            title: "Willis demo: reference UNet3D on synthetic angiography",
            score: score,
            epochs: records.compactMap { r in r.validationLoss.map { .init(epoch: r.epoch, trainLoss: r.trainLoss, validationLoss: $0, score: r.score) } },
            cases: gallery,
            notes: ["Trained on \(trainCount) synthetic series (seed 1) for \(records.count) epoch(s); scored on \(testCount) held-out series (seed 2).",
                    preparation.mode == .reference
                        ? "Reference mode: the notebook's network, loss and preprocessing, on correctly ordered HU volumes, at input "
                            + inputShape.map(String.init).joined(separator: "×") + " to fit the time budget on CPU."
                        : "The notebook's network and loss on improved inputs: canonical orientation, "
                            + String(format: "%g", preparation.spacing) + " mm spacing, a head crop of "
                            + inputShape.map(String.init).joined(separator: "×") + " voxels, CT window or MR z-score."])
        var figures: [(caption: String, file: String)] = []
        let predictions = truth.map { byUID[$0.seriesInstanceUID] ?? [] }
        if let roc = LinePlot.roc(predictions: predictions, truth: truth.map(\.labels), score: score) {
            try Data(try roc.png()).write(to: URL(fileURLWithPath: "\(folder)/report/roc.png"))
            figures.append(("ROC curves on the held-out series", "roc.png"))
        }
        if FileManager.default.fileExists(atPath: "\(folder)/run/training-curves.png") {
            try? FileManager.default.removeItem(atPath: "\(folder)/report/training-curves.png")
            try FileManager.default.copyItem(atPath: "\(folder)/run/training-curves.png", toPath: "\(folder)/report/training-curves.png")
            figures.append(("Training curves (validation fold of the training set)", "training-curves.png"))
        }
        report.figures = figures
        let path = "\(folder)/report/index.html"
        try Data(try report.render().utf8).write(to: URL(fileURLWithPath: path))
        return Result(score: score.score, report: path, seconds: elapsed())
    }
}
