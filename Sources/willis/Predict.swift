import Anatomy
import AtomicFile
import ArgumentParser
import DICOM
import Dataset
import Dispatch
import Foundation
import Inference
import Models
import Scoring
import Synth
import Preprocessing
import Reports
import Torch
import Training

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write submission.csv: 14 probabilities per series, in the competition's column order.",
        discussion: """
            SERIES is one series folder, or a folder of series folders (such as an RSNA series/ folder). \
            A series that cannot be read gets a logged error and prior probabilities, so the file is \
            complete; the exit status is then 3.
            """)

    @OptionGroup var engineOptions: EngineOptions

    @Argument(help: "A series folder, or a folder of series folders.")
    var series: String

    @Option(help: "Weights (.safetensors from willis train or the notebook's state_dict); repeat it for an ensemble (e.g. one per fold), whose probabilities are averaged. Not needed with a --candidate-classifier trained with no detector.")
    var weights: [String] = []

    @Option(help: "Output CSV (default: submission.csv, or RESULTS/submission.csv with --results; with --shard i/N that name with .rank<i> before .csv).")
    var out: String?

    @Option(help: "Input size DxHxW (default: what the weights say, else 64x128x128).")
    var inputShape: String?

    @Option(help: "reference or improved (default: what the weights say, else reference).")
    var preprocessing: String?

    @Option(help: "cpu, cuda or cuda:N.")
    var device: String = "cpu"

    @Option(help: "Detector: sliding window DxHxW, or 'none' for the whole input at once (default: the patch shape the weights were trained on, if any).")
    var window: String?
    @Option(help: "Detector: fp32, or bf16 (mixed precision: CUDA, or CPUs with AVX-512 BF16 or AMX; other CPUs run fp32 and say so) (default: what the weights were trained with).")
    var precision: String?
    @Option(help: "Detector with --readout pooled: how the heatmap is pooled into the 13 locations: lumen (each voxel weighted by its probability of being the artery's lumen, as trained) or artery (by its probability of belonging to that artery rather than another).")
    var locationPooling: String = "lumen"
    @Option(help: "Detector: where the 14 probabilities come from: candidates (the heatmap's strongest peaks, each named by the location prior stored in the weights, combined as independent chances) or pooled (the network's own outputs) (default: candidates when the weights carry a location prior, else pooled).")
    var readout: String?
    @Option(help: "Detector with --readout candidates, or a candidate classifier with no detector: the strongest candidates read per series.")
    var candidates: Int = CandidateReadout.defaultCount
    @Option(help: ArgumentHelp("Detector with --readout candidates: a second stage from willis train-candidates that scores the image around each heatmap peak. Repeat it for an ensemble (see --candidate-ensemble). One trained with no detector is used without --weights: it scores the dot filter's candidates alone.",
                               valueName: "candidate-classifier.safetensors"))
    var candidateClassifier: [String] = []
    @Option(help: "With --candidate-classifier: how a peak's probability is made from the heatmap's value p and the classifier's q: classifier (q), geometric-mean (√(p·q)) or heatmap (p; q is only recorded) (default: geometric-mean with detector weights, classifier without).")
    var candidateScoring: String?
    @Flag(help: "With --candidate-classifier: use the scoring rule's values as they are, not mapped through the calibration that willis train-candidates fitted on peaks neither stage trained on.")
    var uncalibrated = false

    @Option(help: "With --candidate-classifier: which views of each candidate's cube it reads: mirror (the cube and its left-right mirror) or all (also its flips head-foot and front-back, each with its mirror: eight views, four times the classifier's work; training showed it every flip).")
    var candidateFlips: String?
    @Option(help: "With several --candidate-classifier: series (each classifier reads the series as it would alone, and the 14 probabilities are the mean of theirs) or candidates (each candidate's calibrated score is the mean of theirs, read once). Either way candidates.json lists the mean scores.")
    var candidateEnsemble: String = Predictor.CandidateStage.Combination.series.rawValue

    @Option(help: "Threads reading and preparing series while the network runs.")
    var workers: Int = 2

    @Option(help: "Prepared series waiting for the network, at most (bounds memory with --workers).")
    var queue: Int = 2

    @Option(help: "Results folder for willis serve: submission.csv, and per series its result, MIPs, the prepared input and, with detector weights, the aneurysm heatmap (NIfTI in patient geometry) and top candidates.")
    var results: String?

    @Option(help: "Predict only the series folders named in this file, one a line (e.g. the held-out-series.txt of willis train-candidates --fold: its out-of-fold predictions); every one must be there.")
    var seriesList: String?

    @Option(help: "Predict only shard i of N (i/N, 0-based; series sorted by folder name, taken round-robin). Default: RANK/WORLD_SIZE from the environment when set (the output then goes to OUT with {rank} replaced, or OUT.rank<i>.csv), else everything.")
    var shard: String?

    func run() throws {
        _ = try engineOptions.load()
        guard workers >= 1, queue >= 1 else { throw ValidationError("--workers and --queue must be at least 1") }
        let setup = try predictorSetup()
        let predictor: Predictor
        do { predictor = try setup.predictor(device: Device(parsing: device)) } catch let error as PredictorSetupError {
            throw ValidationError(error.description)
        }
        if let note = predictor.precisionNote { print("warning: \(note)") }
        try predict(with: predictor, setup: setup)
    }

    /// The options, checked and typed: what run.json records for willis serve.
    func predictorSetup() throws -> PredictorSetup {
        var setup = PredictorSetup(weights: weights.map(absolutePath), candidateClassifiers: candidateClassifier.map(absolutePath))
        setup.candidateScoring = try parseCandidateScoring(candidateScoring)
        setup.calibrated = !uncalibrated
        setup.inputShape = try inputShape.map(parseShape)
        if let preprocessing {
            guard let mode = Preparation.Mode(rawValue: preprocessing) else { throw ValidationError("--preprocessing must be reference or improved") }
            setup.mode = mode
        }
        if let window { setup.window = window == "none" ? [] : try parseShape(window) }
        if let precision {
            guard let p = TrainingConfig.Precision(rawValue: precision) else { throw ValidationError("--precision must be fp32 or bf16") }
            setup.bf16 = p == .bf16
        }
        guard let pooling = Detector.LocationPooling(rawValue: locationPooling) else { throw ValidationError("--location-pooling must be lumen or artery") }
        setup.locationPooling = pooling
        if let readout {
            guard let choice = PredictorSetup.ReadoutChoice(rawValue: readout) else { throw ValidationError("--readout must be candidates or pooled") }
            setup.readout = choice
        }
        setup.candidates = candidates
        if let candidateFlips {
            guard let flips = CandidateClassifier.TestTimeFlips(rawValue: candidateFlips) else { throw ValidationError("--candidate-flips must be mirror or all") }
            setup.candidateFlips = flips
        }
        guard let combination = Predictor.CandidateStage.Combination(rawValue: candidateEnsemble) else {
            throw ValidationError("--candidate-ensemble must be \(Predictor.CandidateStage.Combination.allCases.map(\.rawValue).joined(separator: " or "))")
        }
        setup.candidateEnsemble = combination
        return setup
    }

    func predict(with predictor: Predictor, setup: PredictorSetup) throws {
        if case let .candidates(r) = predictor.readout {
            if let stage = predictor.candidateStage, !stage.readsOneCandidateSet {
                let each = stage.members.map { "\($0.path): \(Predictor.CandidateStage.CandidateSet($0.settings).text(heatmap: !stage.standsAlone))" }
                print((stage.standsAlone ? "no detector: " : "") + "each classifier scores the candidates it was trained on (\(each.joined(separator: "; "))) (\(stage.scoring.rawValue)\(stage.combinationText)); each reads its \(r.count) best, named by \(stage.naming)")
            } else if let stage = predictor.candidateStage, stage.standsAlone {
                let names = candidateClassifier.joined(separator: ", ")
                let search = stage.settings.dotFilter?.filter.peakSearch == .eachScale ? " (each scale's maxima)" : ""
                print("no detector: scoring up to \(stage.settings.dotFilter?.count ?? 0) dot-filter candidates\(search) of each series with \(names) (classifier\(stage.combinationText)); reading the \(r.count) best, named by \(stage.naming)")
            } else if let stage = predictor.candidateStage {
                let names = candidateClassifier.joined(separator: ", ")
                let dots = stage.settings.dotFilter.map { " and up to \($0.count) dot-filter candidates away from them (as the classifier was trained)" } ?? ""
                print("scoring the \(stage.settings.peaksPerSeries) strongest heatmap peaks\(dots) of each series with \(names) (\(stage.scoring.rawValue)\(stage.combinationText)); reading the \(r.count) best, named by \(stage.naming)")
                let maps = stage.calibrations.compactMap { $0 }
                for c in maps {
                    print(String(format: "each peak's score calibrated: σ(%.3f · logit(s) %+.3f), fitted on %d %@ (%d aneurysms)", c.slope, c.intercept, c.peaks, c.source, c.positives))
                }
                if maps.isEmpty {
                    print(uncalibrated ? "peaks' scores used as they are (--uncalibrated)"
                          : "warning: \(names) carr\(stage.members.count > 1 ? "y" : "ies") no calibration for \(stage.scoring.rawValue): \(stage.members.count > 1 ? "their" : "its") scores are not probabilities of an aneurysm (train again with willis train-candidates)")
                }
            } else {
                print("reading the \(r.count) strongest heatmap peaks of each series, named by the weights' location prior")
            }
        }
        if predictor.candidateStage?.flips == .all { print("each candidate's cube read in its eight flips, each with its left-right mirror (--candidate-flips all)") }
        if let w = predictor.window { print("sliding window \(w.map(String.init).joined(separator: "x")) over the input") }
        print("preparing series in \(predictor.preparation.mode.rawValue) mode at \(predictor.inputShape.map(String.init).joined(separator: "x"))")
        var folders = seriesFolders(series)
        if let seriesList { folders = try listedSeries(folders, list: seriesList) }
        var environmentShard: Int?, flagShard: Int?
        if let shard {
            guard let (i, n) = Sharding.parse(shard) else { throw ValidationError("--shard must be i/N with 0 ≤ i < N, not \(shard)") }
            folders = Sharding.select(folders, shard: i, of: n)
            flagShard = i
            print("shard \(i)/\(n): \(folders.count) series")
        } else if let (i, n) = Sharding.fromEnvironment() {
            folders = Sharding.select(folders, shard: i, of: n)
            environmentShard = i
            print("shard \(i)/\(n) from RANK and WORLD_SIZE: \(folders.count) series")
        }
        // Prior for a series that fails: roughly the RSNA training prevalences.
        let prior = LocationLabel.allCases.map { $0 == .aneurysmPresent ? 0.43 : 0.04 }
        var rows: [(uid: String, probabilities: [Double])] = []
        var failures = 0
        let baseline = ProcessMemory.resident().current
        let start = DispatchTime.now().uptimeNanoseconds
        let bar = ProgressBar(label: "predicting")
        var pipeline = BatchPrediction(workers: workers, queueDepth: queue)
        var loader = SeriesLoader()
        if let results {
            let folder = ResultsFolder(results)
            try folder.writeRun(RunInfo(weights: setup.weights, preparation: predictor.preparation,
                                        candidateClassifiers: predictor.candidateStage == nil ? nil : setup.candidateClassifiers,
                                        candidateScoring: predictor.candidateStage?.scoring.rawValue,
                                        candidateCalibrations: predictor.candidateStage.map { $0.calibrations.compactMap { $0 } }.flatMap { $0.isEmpty ? nil : $0 },
                                        setup: setup))
            pipeline.results = folder
            // Kept in the series' identifying.json, which willis serve shows only with --show-phi.
            loader = SeriesLoader(options: SeriesLoader.Options(includePHI: true))
        }
        var out = out ?? results.map { ResultsFolder($0).submissionPath } ?? "submission.csv"
        // Launched processes all get the same --out, and shards given by flag the same default (often one
        // --results folder): each shard writes its own file, for merge-predictions, so none overwrites another.
        if let i = environmentShard ?? (self.out == nil ? flagShard : nil) { out = Sharding.outputPath(out, shard: i) }
        pipeline.run(folders, predictor: predictor, loader: loader) { i, outcome in
            if let p = outcome.probabilities, let uid = outcome.uid {
                for w in outcome.warnings { FileHandle.standardError.write(Data("warning: \(outcome.folder): \(w)\n".utf8)) }
                rows.append((uid, p))
            } else {
                failures += 1
                bar.finishIfStarted()
                FileHandle.standardError.write(Data("error: \(outcome.folder): \(outcome.error ?? "unknown") (prior probabilities written)\n".utf8))
                rows.append(((outcome.folder as NSString).lastPathComponent, prior))
            }
            bar.update(i + 1, folders.count)
        }
        bar.finishIfStarted()
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        try AtomicFile.write(Data(Submission.encode(rows).utf8), to: out)
        print("wrote \(out): \(rows.count) series, \(failures) failed, "
              + String(format: "%.1f s (%.1f series/min", seconds, Double(rows.count) / max(seconds, 1e-9) * 60)
              + " with \(workers) worker(s))")
        let memory = ProcessMemory.resident()
        print(String(format: "peak memory %.0f MB (%.0f MB before the first series: runtime, engine and model)",
                     Double(memory.peak) / 1e6, Double(baseline) / 1e6))
        if failures > 0 { throw ExitCode(3) }
    }
}

/// `--candidate-scoring`, as predict and serve take it; nil stays nil (the default rule).
func parseCandidateScoring(_ raw: String?) throws -> CandidateScoring? {
    guard let raw else { return nil }
    guard let scoring = CandidateScoring(rawValue: raw) else {
        throw ValidationError("--candidate-scoring must be \(CandidateScoring.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    return scoring
}

func absolutePath(_ path: String) -> String {
    path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
}

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Score predictions against labels with the competition metric, per-column AUC and error analysis.")

    @Option(help: "train.csv with the true labels.") var labels: String
    @Option(help: "submission.csv to score.") var predictions: String
    @Option(help: "Threshold on Aneurysm Present for sensitivity and specificity.") var threshold: Double = 0.5
    @Option(help: "How many worst false negatives and positives to list.") var worst: Int = 5
    @Option(help: "ROC curve image (default: roc.png next to the predictions).") var roc: String?
    @Option(help: "Detection: a results folder from willis predict --results with detector candidates; needs --localizers and --series.") var results: String?
    @Option(help: "Detection: train_localizers.csv of the labelled series.") var localizers: String?
    @Option(help: "Detection: the folder of the labelled series (to place the localizer points in the patient).") var series: String?
    @Option(help: "Detection: a candidate within this many mm of an aneurysm finds it.") var radius: Double = 7
    @Option(name: .customLong("truth"), help: "Detection on synthetic data: synth_aneurysms.csv (centres and sizes; instead of --localizers and --series), adding the FROC of small aneurysms.") var synthTruth: String?
    @Option(help: "Detection with --truth: aneurysms up to this diameter (mm) are scored as small.") var smallDiameter: Double = 3
    @Option(help: "Bootstrap resamples of the series for the score's 95 % interval (0: none).") var bootstrap: Int = 1000
    @Option(help: "Another submission.csv of the same series: the paired difference of the scores, with its bootstrap interval.") var compare: String?

    func run() throws {
        let truth = try RSNATables.readLabels(labels)
        let predicted = try Submission.read(predictions)
        let matched = truth.filter { predicted[$0.seriesInstanceUID] != nil }
        let missing = truth.count - matched.count
        if missing > 0 { print("warning: \(missing) labelled series have no prediction and are left out") }
        guard !matched.isEmpty else { throw ValidationError("no predicted series is in \(labels)") }
        let p = matched.map { predicted[$0.seriesInstanceUID] ?? [] }
        let result = CompetitionScore(predictions: p, truth: matched.map(\.labels))
        print(String(format: "competition score: %@  (AUC Aneurysm Present %@, mean location AUC %@) over %d series",
                     fmt(result.score), fmt(result.auc[.aneurysmPresent] ?? nil), fmt(result.meanLocationAUC), matched.count))
        var rng = SplitMix64(seed: 20251)
        if bootstrap > 0, let ci = ScoreUncertainty.score(predictions: p, truth: matched.map(\.labels), resamples: bootstrap, using: &rng) {
            print(String(format: "  95 %% bootstrap interval over the series: %.4f to %.4f (%d resamples)", ci.lower, ci.upper, ci.defined))
        }
        if let compare {
            let other = try Submission.read(compare)
            let absent = matched.filter { other[$0.seriesInstanceUID] == nil }.count
            guard absent == 0 else { throw ValidationError("\(compare) lacks \(absent) of the series scored here") }
            let q = matched.map { other[$0.seriesInstanceUID] ?? [] }
            if bootstrap == 0 {
                let (a, b) = (result.score, CompetitionScore(predictions: q, truth: matched.map(\.labels)).score)
                print("  minus \(compare): " + (a.flatMap { x in b.map { String(format: "%+.4f", x - $0) } } ?? "undefined"))
            } else if let d = ScoreUncertainty.difference(p, q, truth: matched.map(\.labels), resamples: bootstrap, using: &rng) {
                print(String(format: "  minus %@: %+.4f, 95 %% paired bootstrap interval %+.4f to %+.4f (above zero in %.1f %% of %d resamples)",
                             compare, d.estimate, d.lower, d.upper, 100 * (d.shareAboveZero ?? 0), d.defined))
            } else {
                print("  minus \(compare): undefined (a column holds one class only)")
            }
        }
        for label in LocationLabel.allCases {
            print("  \(label.columnName.padding(toLength: 46, withPad: " ", startingAt: 0)) AUC \(fmt(result.auc[label] ?? nil))")
        }
        for modality in Modality.allCases {
            let rows = matched.indices.filter { matched[$0].modality == modality }
            guard !rows.isEmpty else { continue }
            let m = CompetitionScore(predictions: rows.map { p[$0] }, truth: rows.map { matched[$0].labels })
            print("  \(modality.rawValue.padding(toLength: 12, withPad: " ", startingAt: 0)) \(rows.count) series (\(rows.filter { matched[$0].isPositive }.count) positive): "
                  + "score \(fmt(m.score)), AUC Aneurysm Present \(fmt(m.auc[.aneurysmPresent] ?? nil)), mean location AUC \(fmt(m.meanLocationAUC))")
        }
        let ap = LocationLabel.aneurysmPresent.rawValue
        let positives = matched.indices.filter { matched[$0].isPositive }, negatives = matched.indices.filter { !matched[$0].isPositive }
        let tp = positives.filter { p[$0][ap] >= threshold }.count, tn = negatives.filter { p[$0][ap] < threshold }.count
        print(String(format: "at threshold %.2f: sensitivity %d/%d, specificity %d/%d", threshold, tp, positives.count, tn, negatives.count))
        if let r = Reliability(probabilities: p.map { $0[ap] }, labels: matched.map(\.isPositive)) {
            print(String(format: "calibration of Aneurysm Present: mean %.3f against %.3f positive; Brier score %.4f (%.4f predicting %.3f for every series)",
                         r.meanPredicted, r.prevalence, r.brier, r.brierOfPrevalence, r.prevalence))
            for band in r.bands {
                print(String(format: "  predicted %.1f–%.1f: %3d series, mean %.3f, positive %.3f", band.lower, band.upper, band.count, band.meanPredicted, band.observed))
            }
        }
        let fn = positives.sorted { p[$0][ap] < p[$1][ap] }.prefix(worst)
        let fp = negatives.sorted { p[$0][ap] > p[$1][ap] }.prefix(worst)
        print("worst false negatives (lowest Aneurysm Present among positives):")
        for i in fn {
            let where_ = LocationLabel.locations.filter { matched[i][$0] }.map(\.columnName).joined(separator: ", ")
            print(String(format: "  %@  p=%.3f  %@  %@", matched[i].seriesInstanceUID, p[i][ap], matched[i].modality.rawValue, where_))
        }
        print("worst false positives (highest Aneurysm Present among negatives):")
        for i in fp { print(String(format: "  %@  p=%.3f  %@", matched[i].seriesInstanceUID, p[i][ap], matched[i].modality.rawValue)) }
        let rocPath = roc ?? (((predictions as NSString).deletingLastPathComponent as NSString).appendingPathComponent("roc.png"))
        if let plot = LinePlot.roc(predictions: p, truth: matched.map(\.labels), score: result) {
            try AtomicFile.write(try plot.png(), to: rocPath)
            print("ROC curves: \(rocPath)")
        }
        if let results {
            if let synthTruth {
                try scoreDetection(ResultsFolder(results), synthTruth: synthTruth, labelled: matched)
            } else {
                guard let localizers, let series else {
                    throw ValidationError("detection scoring needs --truth, or --localizers and --series, with --results")
                }
                try scoreDetection(ResultsFolder(results), localizers: localizers, seriesRoot: series, labelled: matched)
            }
        }
    }

    func fmt(_ v: Double?) -> String { v.map { String(format: "%.4f", $0) } ?? "undefined" }

    /// The candidates recorded for the labelled series, and how many of those series have none. A folder
    /// with none for any labelled series is refused: that is a wrong folder (or predictions without the
    /// candidate readout), not a detector that found nothing.
    func recordedCandidates(_ folder: ResultsFolder, _ labelled: [SeriesLabels]) throws -> (candidates: [String: [DetectionScore.Candidate]], missing: Int) {
        var candidates: [String: [DetectionScore.Candidate]] = [:]
        for row in labelled {
            guard let list = folder.result(row.seriesInstanceUID)?.candidates else { continue }
            candidates[row.seriesInstanceUID] = list.map { DetectionScore.Candidate(lps: $0.lps, probability: $0.probability) }
        }
        guard !candidates.isEmpty else {
            throw ValidationError("\(folder.root) holds no candidates for any of the \(labelled.count) labelled series: give the folder `willis predict --results` wrote with the candidate readout")
        }
        return (candidates, labelled.count - candidates.count)
    }

    /// Places every localizer point in its series' patient space and scores the recorded candidates.
    func scoreDetection(_ folder: ResultsFolder, localizers: String, seriesRoot: String, labelled: [SeriesLabels]) throws {
        var byUID: [String: [LocalizerPoint]] = [:]
        for p in try RSNATables.readLocalizers(localizers) { byUID[p.seriesInstanceUID, default: []].append(p) }
        let (candidates, missing) = try recordedCandidates(folder, labelled)
        var truth: [String: [[Double]]] = [:]
        var unplaced = 0
        for uid in candidates.keys {
            guard let points = byUID[uid], !points.isEmpty else { continue }
            let s = try SeriesLoader().load("\(seriesRoot)/\(uid)")
            truth[uid] = points.compactMap { p in
                guard let v = s.patientPoint(sopInstanceUID: p.sopInstanceUID, x: p.x, y: p.y, frame: p.frame ?? 0) else { unplaced += 1; return nil }
                return [v.x, v.y, v.z]
            }
        }
        let score = DetectionScore(truth: truth, candidates: candidates, radius: radius)
        printDetection(score, what: "aneurysms", missing: missing)
        if unplaced > 0 { print("  \(unplaced) localizer point(s) could not be placed in their series") }
    }

    /// Scores the recorded candidates against the generator's truth: every aneurysm, then the small ones
    /// alone (the larger ones neither counted nor making false positives).
    func scoreDetection(_ folder: ResultsFolder, synthTruth: String, labelled: [SeriesLabels]) throws {
        var byUID: [String: [SynthAneurysm]] = [:]
        for a in try SynthAneurysm.read(synthTruth) { byUID[a.seriesInstanceUID, default: []].append(a) }
        let (candidates, missing) = try recordedCandidates(folder, labelled)
        func targets(_ counted: @escaping (SynthAneurysm) -> Bool) -> [String: [DetectionScore.Target]] {
            byUID.mapValues { $0.map { DetectionScore.Target(lps: [$0.center.x, $0.center.y, $0.center.z], counted: counted($0)) } }
        }
        printDetection(DetectionScore(targets: targets { _ in true }, candidates: candidates, radius: radius), what: "aneurysms", missing: missing)
        printDetection(DetectionScore(targets: targets { $0.diameter <= smallDiameter }, candidates: candidates, radius: radius),
                       what: String(format: "aneurysms of at most %g mm", smallDiameter), missing: missing)
    }

    func printDetection(_ score: DetectionScore, what: String, missing: Int) {
        print(String(format: "detection of %@ (a candidate within %.0f mm finds one) over %d series with candidates (%d without aneurysms), %d %@%@:",
                     what, radius, score.series, score.negativeSeries, score.aneurysms, what,
                     missing > 0 ? ", \(missing) series without candidates left out" : ""))
        print("  found by the strongest candidate: \(score.foundAtRank[0]) / \(score.aneurysms); by any of the 5 strongest: \(score.foundAtRank[4]) / \(score.aneurysms)")
        for fp in [0.1, 0.25, 0.5, 1, 2, 4] {
            print(String(format: "  FROC: sensitivity %.3f at %.2f false positives per series, %.3f at %.2f per series without aneurysms",
                         score.sensitivity(atFalsePositivesPerSeries: fp), fp, score.sensitivity(atFalsePositivesPerNegativeSeries: fp), fp))
        }
    }
}

struct MergePredictions: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge-predictions",
        abstract: "Join the submission.csv files of sharded predictions into one, and report missing or repeated series.",
        discussion: "Exit status 3 when a series expected (from --series or --labels) has no row, or one appears in two shards.")

    @Argument(help: "The shards' CSV files.") var shards: [String]
    @Option(help: "Output CSV.") var out: String = "submission.csv"
    @Option(help: "The folder of series folders that was predicted: every one must have a row.") var series: String?
    @Option(help: "A train.csv whose series must all have a row.") var labels: String?

    func run() throws {
        guard !shards.isEmpty else { throw ValidationError("give the shards' CSV files") }
        let merged = try Sharding.merge(shards)
        try AtomicFile.write(Data(Submission.encode(merged.rows).utf8), to: out)
        var expected: [String] = []
        if let series {
            expected += ((try? FileManager.default.contentsOfDirectory(atPath: series)) ?? []).filter { !$0.hasPrefix(".") }
        }
        if let labels { expected += try RSNATables.readLabels(labels).map(\.seriesInstanceUID) }
        let have = Set(merged.rows.map(\.uid))
        let missing = Set(expected).subtracting(have).sorted()
        print("wrote \(out): \(merged.rows.count) series from \(shards.count) shard(s)")
        for uid in merged.duplicates { FileHandle.standardError.write(Data("warning: \(uid) is in more than one shard (the first row is kept)\n".utf8)) }
        for uid in missing { FileHandle.standardError.write(Data("missing: \(uid) has no prediction\n".utf8)) }
        if !missing.isEmpty || !merged.duplicates.isEmpty {
            print("\(missing.count) missing, \(merged.duplicates.count) repeated")
            throw ExitCode(3)
        }
    }
}

/// The folders of `folders` whose names `list` (a file, one name a line; blank lines skipped) holds, in
/// their order; a name with no folder is refused, since a cross-validation missing a series would
/// quietly score fewer.
func listedSeries(_ folders: [String], list: String) throws -> [String] {
    let text: String
    do { text = try String(contentsOfFile: list, encoding: .utf8) } catch { throw ValidationError("--series-list: cannot read \(list): \(error.localizedDescription)") }
    let names = Set(text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
    let kept = folders.filter { names.contains(($0 as NSString).lastPathComponent) }
    let missing = names.subtracting(kept.map { ($0 as NSString).lastPathComponent }).sorted()
    guard missing.isEmpty else {
        throw ValidationError("--series-list: \(missing.count) of the \(names.count) series listed in \(list) have no folder here (\(missing.prefix(3).joined(separator: ", "))\(missing.count > 3 ? ", …" : ""))")
    }
    print("\(kept.count) series listed in \(list)")
    return kept
}

/// The series folders under `path`, sorted: its subfolders, or `path` itself when it has none.
func seriesFolders(_ path: String) -> [String] {
    let children = ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted().filter {
        var dir: ObjCBool = false
        return FileManager.default.fileExists(atPath: "\(path)/\($0)", isDirectory: &dir) && dir.boolValue
    }
    return children.isEmpty ? [path] : children.map { "\(path)/\($0)" }
}
