import Anatomy
import DICOM
import Dataset
import Foundation
import Inference
import Models
import NIfTI
import Preprocessing
import Synth
import TestSupport
import Testing
import Torch
import Training
import VolumeCore

/// The detector's second stage: trained on the detector's own peaks, labelled by the localizer points,
/// and used by `Predictor` to re-score the candidate readout's peaks.
@Suite(.serialized) struct CandidateClassifierTrainingTests {
    init() throws { _ = try engine() }

    /// Six small synthetic series with localizers, and untrained detector weights (base 4) with a
    /// location prior fitted to them.
    func detectorWithPrior(seed: UInt64, in root: String) throws -> String {
        var options = SynthOptions(count: 6, size: .small, seed: seed)
        options.positiveFraction = 0.7
        _ = try SynthDataset.generate(options, into: "\(root)/data")
        try Torch.manualSeed(seed)
        var preparation = Preparation(mode: .improved, shape: [16, 32, 32])
        preparation.spacing = 4.8
        try Detector(baseFilters: 4).store.save(to: "\(root)/detector.safetensors",
                                                metadata: ["willis_model": "detector", Preparation.metadataKey: preparation.json])
        var fit = LocationPriorFit(dataRoot: "\(root)/data", weights: "\(root)/detector.safetensors")
        fit.log = { _ in }
        try fit.run()
        return "\(root)/detector.safetensors"
    }

    /// Three small synthetic series, each with an aneurysm: a validation or positive folder.
    func positiveSeries(seed: UInt64, into folder: String) throws {
        var options = SynthOptions(count: 3, size: .small, seed: seed)
        options.positiveFraction = 1
        _ = try SynthDataset.generate(options, into: folder)
    }

    func training(_ root: String, detector: String) -> CandidateClassifierTraining {
        var t = CandidateClassifierTraining(dataRoot: "\(root)/data", detectorWeights: detector, output: "\(root)/stage2")
        shrink(&t)
        return t
    }

    /// A few steps of a tiny classifier on every local maximum: what the tests need, in seconds.
    func shrink(_ t: inout CandidateClassifierTraining) {
        t.steps = 3
        t.batchSize = 4
        t.baseFilters = 4
        t.patchSize = 8
        t.peaksPerSeries = 6
        t.peakThreshold = 0  // an untrained heatmap sits near 0.01 everywhere: take every local maximum
        t.matchMM = 10
        t.log = { _ in }
    }

    /// Six small synthetic series, most with an aneurysm.
    func sixSeries(seed: UInt64) -> SynthOptions {
        var options = SynthOptions(count: 6, size: .small, seed: seed)
        options.positiveFraction = 0.7
        return options
    }

    /// The series of `options` in ROOT/data, and a tiny second stage with no detector on each series' five
    /// strongest dot-filter candidates, prepared at 4.8 mm on a 16×32×32 crop.
    func standAloneTraining(_ options: SynthOptions, in root: String) throws -> CandidateClassifierTraining {
        _ = try SynthDataset.generate(options, into: "\(root)/data")
        var training = CandidateClassifierTraining(dataRoot: "\(root)/data", preparation: standAlonePreparation, output: "\(root)/stage2")
        shrink(&training)
        training.dotFilter = DotFilterCandidates(count: 5, depthMM: 8, separationMM: 10)
        return training
    }

    /// How `standAloneTraining` prepares its series.
    var standAlonePreparation: Preparation {
        var preparation = Preparation(mode: .improved, shape: [16, 32, 32])
        preparation.spacing = 4.8
        return preparation
    }

    @Test func scoringRulesCombineAndReorderThePeaks() {
        let peaks = [HeatmapPeak(voxel: [1, 1, 1], probability: 0.8), HeatmapPeak(voxel: [2, 2, 2], probability: 0.4),
                     HeatmapPeak(voxel: [3, 3, 3], probability: 0.1)]
        let q = [0.2, 0.9, 0.2]
        let byClassifier = CandidateScoring.classifier.rescore(peaks, classifier: q)
        #expect(byClassifier.map(\.voxel) == [[2, 2, 2], [1, 1, 1], [3, 3, 3]], "0.9 first; the 0.2 tie keeps the heatmap's order")
        #expect(byClassifier.map(\.probability) == [0.9, 0.2, 0.2])
        #expect(byClassifier.map(\.heatmap) == [0.4, 0.8, 0.1] && byClassifier.map(\.classifier) == [0.9, 0.2, 0.2])
        let byMean = CandidateScoring.geometricMean.rescore(peaks, classifier: q)
        #expect(byMean.map(\.voxel) == [[2, 2, 2], [1, 1, 1], [3, 3, 3]])
        #expect(byMean.map(\.probability) == [(0.4 * 0.9).squareRoot(), (0.8 * 0.2).squareRoot(), (0.1 * 0.2).squareRoot()])
        // A classifier probability that is not finite counts as 0, so it cannot reorder or poison the readout.
        let poisoned = CandidateScoring.geometricMean.rescore(peaks, classifier: [.nan, 0.9, 0.2])
        #expect(poisoned.map(\.voxel) == [[2, 2, 2], [3, 3, 3], [1, 1, 1]] && poisoned.last?.probability == 0)
        let byHeatmap = CandidateScoring.heatmap.rescore(peaks, classifier: q)
        #expect(byHeatmap.map(\.probability) == [0.8, 0.4, 0.1] && byHeatmap.map(\.classifier) == q)
        // An ensemble: each member's score through its own map, then the mean; the peak records the mean q.
        let doubled = CandidateCalibration(slope: 1, intercept: log(2.0), peaks: 1, positives: 1, source: "")  // odds × 2
        let q2 = [0.6, 0.1, 0.9]
        let ensemble = CandidateScoring.classifier.rescore(peaks, classifiers: [q, q2], calibrations: [nil, doubled])
        func oddsTimesTwo(_ s: Double) -> Double { 2 * s / (1 + s) }
        let expected = (0..<3).map { (q[$0] + oddsTimesTwo(q2[$0])) / 2 }
        #expect(ensemble.map(\.voxel) == [[3, 3, 3], [2, 2, 2], [1, 1, 1]], "\(expected)")
        for peak in ensemble {
            let n = peaks.firstIndex { $0.voxel == peak.voxel } ?? -1
            #expect(abs(peak.probability - expected[n]) < 1e-12 && abs((peak.classifier ?? -1) - (q[n] + q2[n]) / 2) < 1e-12)
            #expect(peak.heatmap == peaks[n].probability)
        }
    }

    /// Examples: every peak is labelled by its distance to the localizer points, and every point is a
    /// positive of its own, cut from the image around it. Training writes weights whose settings say how
    /// to read the peaks; prediction then scores the readout's peaks with them: each candidate's
    /// probability is the classifier's mean over the cube and its mirror, and the 14 outputs are the
    /// readout of the re-scored peaks.
    @Test func trainsOnTheDetectorsPeaksAndRescoresThemInPrediction() throws {
        let root = try temporaryDirectory()
        let detector = try detectorWithPrior(seed: 31, in: root)
        let training = training(root, detector: detector)
        let report = try training.run()
        #expect(report.trainingExamples.positive > 0 && report.trainingExamples.negative > 0)

        // The examples, recomputed, against the cache's targets.
        let predictor = try Predictor(weights: detector)
        let cache = PreprocessedCache(root: "\(root)/data/.willis-cache", preparation: predictor.preparation)
        let uids = try RSNATables.readLabels("\(root)/data/train.csv").map(\.seriesInstanceUID).sorted()
        let examples = try training.examples(uids, cache: cache, predictor: predictor, seriesRoot: "\(root)/data/series")
        var points = 0
        for uid in uids {
            let targets = try cache.detectionTargets(uid).points
            let input = try cache.load(uid)
            let heat = try #require(try predictor.infer(input, heatmap: true).heatmap)
            let peaks = HeatmapPeak.find(heat, shape: predictor.preparation.shape, count: 6, threshold: 0)
            let mine = examples.filter { $0.uid == uid }
            #expect(mine.filter(\.isPeak).count == peaks.count)
            for (example, peak) in zip(mine.filter(\.isPeak), peaks) {
                let near = targets.contains { t in
                    let d = [t.i - Double(peak.voxel[0]), t.j - Double(peak.voxel[1]), t.k - Double(peak.voxel[2])]
                    return (d.map { $0 * $0 }.reduce(0, +)).squareRoot() * 4.8 <= 10
                }
                #expect(example.positive == near && example.heatmap == peak.probability)
                #expect(example.cube == CandidateClassifier.cube(input, shape: [16, 32, 32], centre: peak.voxel.map(Double.init), size: 8 + 2 * training.jitter))
            }
            #expect(mine.filter { !$0.isPeak }.count == targets.count && mine.filter { !$0.isPeak }.allSatisfy(\.positive))
            points += targets.count
        }
        #expect(points > 0, "the data has localizer points")

        // The weights and their settings.
        let file = try SafeTensorsFile(path: "\(root)/stage2/candidate-classifier.safetensors")
        #expect(file.metadata["willis_model"] == "candidate_classifier")
        let settings = try JSONDecoder().decode(CandidateClassifierSettings.self,
                                                from: Data(try #require(file.metadata[CandidateClassifierSettings.metadataKey]).utf8))
        #expect(settings == CandidateClassifierSettings(baseFilters: 4, patchSize: 8, peaksPerSeries: 6, peakThreshold: 0,
                                                        preparation: predictor.preparation.cacheKey))

        // Prediction with the second stage.
        try predictor.useCandidateClassifier(at: "\(root)/stage2/candidate-classifier.safetensors", scoring: .classifier)
        let stage = try #require(predictor.candidateStage)
        guard case let .candidates(readout) = predictor.readout else { Issue.record("no candidate readout"); return }
        let input = try cache.load(uids[0])
        let result = try predictor.infer(input, heatmap: true)
        let heat = try #require(result.heatmap)
        let peaks = try #require(result.peaks)
        let found = HeatmapPeak.find(heat, shape: [16, 32, 32], count: 6, threshold: 0)
        #expect(Set(peaks.map(\.voxel)) == Set(found.map(\.voxel)) && peaks.count == found.count)
        for peak in peaks {
            let cube = CandidateClassifier.cube(input, shape: [16, 32, 32], centre: peak.voxel.map(Double.init), size: 8)
            let x = try Tensor(cube, shape: [1, 1, 8, 8, 8])
            let member = stage.members[0].classifier
            let q = try Torch.withNoGrad { (try member(x).sigmoid().item() + member(x.flip([4])).sigmoid().item()) / 2 }
            #expect(abs(try #require(peak.classifier) - q) < 1e-6 && peak.probability == peak.classifier)
            #expect(peak.heatmap == found.first { $0.voxel == peak.voxel }?.probability)
        }
        #expect(zip(peaks, peaks.dropFirst()).allSatisfy { $0.probability >= $1.probability })
        #expect(result.probabilities == readout.probabilities(peaks, grid: predictor.preparation.cropGrid))
        #expect(predictor.candidateCount == 6)

        // A results folder lists the same candidates, each with both probabilities.
        var pipeline = BatchPrediction(workers: 1, queueDepth: 1)
        let results = ResultsFolder("\(root)/results")
        pipeline.results = results
        pipeline.run(["\(root)/data/series/\(uids[0])"], predictor: predictor, loader: SeriesLoader()) { _, outcome in
            #expect(outcome.error == nil, "\(outcome.error ?? "")")
        }
        let recorded = try #require(results.result(uids[0])?.candidates)
        #expect(recorded.map(\.voxel) == peaks.map(\.voxel))
        for (r, peak) in zip(recorded, peaks) {
            #expect(abs(r.probability - peak.probability) < 1e-6 && abs((r.classifier ?? -1) - (peak.classifier ?? -2)) < 1e-6 && r.heatmap == peak.heatmap)
        }
    }

    /// bf16 training: where the CPU has native bfloat16 convolutions the steps run under autocast (other
    /// weights than float32's from the same seed, the weights say so); where it has none, the request
    /// falls back to float32 with a warning (the same weights as float32's, bit for bit). Validation is
    /// scored in float32 either way.
    /// A second stage trained at `precision` on a CPU said to have `flags`, into root/name: its weights,
    /// settings and log.
    func trained(_ root: String, detector: String, _ precision: TrainingConfig.CandidatePrecision?, flags: Set<String>,
                 into name: String) throws -> (weights: [Float], settings: CandidateClassifierSettings, log: [String]) {
        var t = training(root, detector: detector)
        // Not shrink's 8: libtorch's bf16 kernels on 2³ samples (the last block of an 8³ cube) give
        // other numbers from run to run, at times NaN, in PyTorch too (12³ and the recipe's 24³ do not).
        t.patchSize = 12
        t.output = "\(root)/\(name)"
        t.precision = precision
        t.cpuFlags = flags
        var lines: [String] = []
        t.log = { lines.append($0) }
        try t.run()
        let file = try SafeTensorsFile(path: "\(root)/\(name)/candidate-classifier.safetensors")
        let settings = try JSONDecoder().decode(CandidateClassifierSettings.self,
                                                from: Data(try #require(file.metadata[CandidateClassifierSettings.metadataKey]).utf8))
        let weights = try file.names.sorted().flatMap { try file.tensor($0).floats() }
        return (weights, settings, lines)
    }

    @Test func bf16StepsRunWhereTheCPUHasNativeBF16AndFallBackToFloat32Elsewhere() throws {
        let root = try temporaryDirectory()
        let detector = try detectorWithPrior(seed: 37, in: root)
        func trained(_ precision: TrainingConfig.CandidatePrecision?, flags: Set<String>, into name: String) throws -> (weights: [Float], settings: CandidateClassifierSettings, log: [String]) {
            try self.trained(root, detector: detector, precision, flags: flags, into: name)
        }
        let plain = try trained(nil, flags: ["avx512_bf16"], into: "fp32")
        let native = try trained(.bf16, flags: ["avx512_bf16"], into: "bf16")
        let fallback = try trained(.bf16, flags: ["avx2", "fma"], into: "fallback")
        #expect(plain.settings.trainedPrecision == nil && native.settings.trainedPrecision == "bf16" && fallback.settings.trainedPrecision == nil)
        #expect(native.log.contains { $0.contains("under bf16 autocast") } && !native.log.contains { $0.hasPrefix("warning") })
        #expect(fallback.log.contains { $0.hasPrefix("warning") && $0.contains("fp32") } && !fallback.log.contains { $0.contains("under bf16 autocast") })
        #expect(native.weights.allSatisfy(\.isFinite) && plain.weights.allSatisfy(\.isFinite))
        let nativeMoved = maxAbsoluteError(native.weights, plain.weights) > 0, fallbackSame = fallback.weights == plain.weights
        #expect(nativeMoved, "bf16 steps give other weights")
        #expect(fallbackSame, "the fallback trains in float32")
        // Prediction reads weights trained in bf16 as any others: float32.
        let predictor = try Predictor(weights: detector)
        try predictor.useCandidateClassifier(at: "\(root)/bf16/candidate-classifier.safetensors", scoring: .classifier)
        #expect(predictor.candidateStage?.members[0].classifier.autocast == nil)

        // Steps that diverge stop the training with an error, and no weights are written.
        var diverging = training(root, detector: detector)
        diverging.patchSize = 12
        diverging.output = "\(root)/diverged"
        diverging.learningRate = 1e30
        diverging.steps = 20
        do {
            try diverging.run()
            Issue.record("a diverging training wrote weights")
        } catch let error as TrainingDiverged {
            #expect(!error.loss.isFinite && error.place.hasPrefix("train-candidates step ") && error.remedy.contains("learning rate"), "\(error)")
        }
        #expect(!FileManager.default.fileExists(atPath: "\(root)/diverged/candidate-classifier.safetensors"))
    }

    /// `precision = fastest`: where bf16 runs natively, a few steps of each precision are timed first, the
    /// log gives both medians, and the run trains in the one with the shorter median, its weights those of
    /// a run given that precision bit for bit (the timing runs on copies, with draws of its own). Where
    /// bf16 is not native, nothing is timed and the run is float32's. Which precision wins depends on the
    /// machine; what is checked is that the choice follows the times and leaves the run as that precision's.
    @Test func fastestPrecisionTimesBothAndTrainsAsTheFasterWould() throws {
        let root = try temporaryDirectory()
        let detector = try detectorWithPrior(seed: 37, in: root)
        let fastest = try trained(root, detector: detector, .fastest, flags: ["avx512_bf16"], into: "fastest")
        let line = try #require(fastest.log.first { $0.hasPrefix("precision fastest: fp32 ") }, "\(fastest.log)")
        let seconds = line.split(separator: " ").compactMap { Double($0) }
        try #require(seconds.count >= 2, "\(line)")
        let chosen: TrainingConfig.CandidatePrecision = line.hasSuffix("training in bf16") ? .bf16 : .fp32
        #expect(line.hasSuffix("training in \(chosen.rawValue)"))
        // Milliseconds to a tenth: times equal as printed may go either way.
        #expect(chosen == .bf16 ? seconds[1] <= seconds[0] : seconds[0] <= seconds[1], "\(line)")
        #expect(fastest.settings.trainedPrecision == (chosen == .bf16 ? "bf16" : nil))
        let given = try trained(root, detector: detector, chosen, flags: ["avx512_bf16"], into: "given")
        #expect(fastest.weights == given.weights, "the timing leaves the run as the chosen precision's")

        let untimed = try trained(root, detector: detector, .fastest, flags: ["avx2", "fma"], into: "untimed")
        let plain = try trained(root, detector: detector, .fp32, flags: ["avx2", "fma"], into: "plain")
        #expect(untimed.log.contains { $0.hasPrefix("precision fastest:") && $0.hasSuffix("fp32, untimed") })
        #expect(!untimed.log.contains { $0.contains(" ms a step, bf16 ") } && untimed.settings.trainedPrecision == nil)
        #expect(untimed.weights == plain.weights)
    }

    /// With a decay d, the weights written are the moving average of the steps' weights started from the
    /// initial ones: after two steps d²·w₀ + d(1 − d)·w₁ + (1 − d)·w₂, where w₁ and w₂ are the weights of
    /// one- and two-step runs without it (both schedules start at the same rate, and the draws are the
    /// same). The last step's weights go beside them, those of the run without an average bit for bit;
    /// each file carries its own scores' calibration and says what it is.
    @Test func aMovingAverageOfTheWeightsIsWrittenBesideTheLastStepsWeights() throws {
        let root = try temporaryDirectory()
        let detector = try detectorWithPrior(seed: 43, in: root)
        func weights(_ file: String) throws -> [Float] {
            let f = try SafeTensorsFile(path: file)
            return try f.names.sorted().flatMap { try f.tensor($0).floats() }
        }
        func metadata(_ file: String) throws -> (settings: CandidateClassifierSettings, calibration: String?) {
            let f = try SafeTensorsFile(path: file)
            let settings = try JSONDecoder().decode(CandidateClassifierSettings.self,
                                                    from: Data(try #require(f.metadata[CandidateClassifierSettings.metadataKey]).utf8))
            return (settings, f.metadata[CandidateCalibration.metadataKey])
        }
        func trained(steps: Int, decay: Double?, into name: String) throws -> (report: CandidateClassifierTraining.Report, log: [String]) {
            var t = training(root, detector: detector)
            t.steps = steps
            t.averageDecay = decay
            t.output = "\(root)/\(name)"
            var lines: [String] = []
            t.log = { lines.append($0) }
            return (try t.run(), lines)
        }
        _ = try trained(steps: 1, decay: nil, into: "one")
        let two = try trained(steps: 2, decay: nil, into: "two")
        let averaged = try trained(steps: 2, decay: 0.25, into: "averaged")
        #expect(!FileManager.default.fileExists(atPath: "\(root)/two/\(CandidateClassifierTraining.lastStepFileName)"))

        // The initial weights: the network built from the training's seed (0), as the training builds it.
        try Torch.manualSeed(0)
        let initial = try CandidateClassifier(baseFilters: 4, patchSize: 8).store.namedTensors.sorted { $0.0 < $1.0 }.flatMap { try $0.1.floats() }
        let (w1, w2) = (try weights("\(root)/one/candidate-classifier.safetensors"), try weights("\(root)/two/candidate-classifier.safetensors"))
        #expect(maxAbsoluteError(w1, initial) > 1e-4 && maxAbsoluteError(w2, w1) > 1e-4, "each step moves the weights")
        let d = 0.25
        let expected = initial.indices.map { i in Float(d * d * Double(initial[i]) + d * (1 - d) * Double(w1[i]) + (1 - d) * Double(w2[i])) }
        let average = try weights("\(root)/averaged/candidate-classifier.safetensors")
        #expect(maxAbsoluteError(average, expected) < 1e-6, "the average of the initial and the two steps' weights")
        let lastStep = "\(root)/averaged/\(CandidateClassifierTraining.lastStepFileName)"
        #expect(try weights(lastStep) == w2, "averaging does not change the steps")

        let (averageFile, lastFile, plainFile) = (try metadata("\(root)/averaged/candidate-classifier.safetensors"), try metadata(lastStep),
                                                  try metadata("\(root)/two/candidate-classifier.safetensors"))
        #expect(averageFile.settings.averageDecay == 0.25 && lastFile.settings.averageDecay == nil && plainFile.settings.averageDecay == nil)
        #expect(lastFile.calibration == plainFile.calibration, "the last step's weights are scored and calibrated as the run without an average")
        #expect(averaged.report.lastStepClassifierAUC == two.report.heldOutClassifierAUC && two.report.lastStepClassifierAUC == nil)
        #expect(averaged.log.contains { $0.contains("moving average") && $0.contains(CandidateClassifierTraining.lastStepFileName) })
        // Prediction reads the average as any weights.
        let predictor = try Predictor(weights: detector)
        try predictor.useCandidateClassifier(at: "\(root)/averaged/candidate-classifier.safetensors", scoring: .classifier)

        // A run without an average into the same folder removes the earlier run's last-step weights.
        var again = training(root, detector: detector)
        again.output = "\(root)/averaged"
        var lines: [String] = []
        again.log = { lines.append($0) }
        try again.run()
        #expect(!FileManager.default.fileExists(atPath: lastStep) && lines.contains { $0.hasPrefix("removed") })
        #expect(try metadata("\(root)/averaged/candidate-classifier.safetensors").settings.averageDecay == nil)

        var keepsFirst = training(root, detector: detector)
        keepsFirst.averageDecay = 1
        keepsFirst.output = "\(root)/one-decay"
        #expect(throws: TorchError.self) { try keepsFirst.run() }
    }

    /// With aligned contrast, the cubes of a T2 series (dark vessels) are negated in training and in
    /// prediction, those of the other modalities not, as the series' DICOM says in both (not the table);
    /// the weights say so, prediction reads it (one by one and in batches alike), and refuses to score
    /// candidates without it.
    @Test func alignedContrastNegatesTheCubesOfDarkVesselSeries() throws {
        let root = try temporaryDirectory()
        let detector = try detectorWithPrior(seed: 45, in: root)  // two T2 series of six
        var training = training(root, detector: detector)
        training.alignContrast = true
        try training.run()

        let predictor = try Predictor(weights: detector)
        let cache = PreprocessedCache(root: "\(root)/data/.willis-cache", preparation: predictor.preparation)
        let labels = try RSNATables.readLabels("\(root)/data/train.csv")
        let modalities = Dictionary(uniqueKeysWithValues: labels.map { ($0.seriesInstanceUID, $0.modality.rawValue) })
        let dark = try #require(labels.first { $0.modality.rawValue == "MRI T2" }?.seriesInstanceUID, "the data holds a T2 series")
        let bright = try #require(labels.first { $0.modality.rawValue != "MRI T2" }?.seriesInstanceUID)
        for uid in [dark, bright] {
            let input = try cache.load(uid)
            let heat = try #require(try predictor.infer(input, heatmap: true).heatmap)
            let peaks = HeatmapPeak.find(heat, shape: [16, 32, 32], count: 6, threshold: 0)
            let mine = try training.examples([uid], cache: cache, predictor: predictor, seriesRoot: "\(root)/data/series", modalities: modalities)
            let sign: Float = uid == dark ? -1 : 1
            for (example, peak) in zip(mine.filter(\.isPeak), peaks) {
                let plain = CandidateClassifier.cube(input, shape: [16, 32, 32], centre: peak.voxel.map(Double.init), size: 8 + 2 * training.jitter)
                #expect(example.cube == plain.map { sign * $0 })
            }
            #expect(mine.filter(\.isPeak).count == peaks.count && !peaks.isEmpty)
        }
        // The DICOM decides, as in prediction: a table that calls the T2 series MRA changes nothing but a
        // logged line, and a series missing from the table is read the same.
        final class Lines { var all: [String] = [] }
        let lines = Lines()
        var told = training
        told.log = { lines.all.append($0) }
        var wrong = modalities
        wrong[dark] = "MRA"
        let plain = try told.examples([dark], cache: cache, predictor: predictor, seriesRoot: "\(root)/data/series", modalities: modalities)
        #expect(lines.all.isEmpty)
        for table in [wrong, [:]] {
            let read = try told.examples([dark], cache: cache, predictor: predictor, seriesRoot: "\(root)/data/series", modalities: table)
            #expect(read.map(\.cube) == plain.map(\.cube))
        }
        #expect(lines.all.count == 1 && lines.all[0].contains("1 of 1 series") && lines.all[0].contains("\(dark) (MRA, read as darkMR)"), "\(lines.all)")

        let weights = "\(root)/stage2/candidate-classifier.safetensors"
        let settings = try JSONDecoder().decode(CandidateClassifierSettings.self,
                                                from: Data(try #require(try SafeTensorsFile(path: weights).metadata[CandidateClassifierSettings.metadataKey]).utf8))
        #expect(settings.alignsContrast == true)

        try predictor.useCandidateClassifier(at: weights, scoring: .classifier)
        let member = try #require(predictor.candidateStage).members[0].classifier
        let series = try SeriesLoader().load("\(root)/data/series/\(dark)")
        #expect(DotFilter.VesselContrast(series) == .darkMR, "its echo time (and description) say T2")
        let input = predictor.prepare(series)
        let result = try predictor.infer(input, heatmap: false, contrast: .darkMR)
        let peaks = try #require(result.peaks)
        for peak in peaks {
            let cube = CandidateClassifier.cube(input, shape: [16, 32, 32], centre: peak.voxel.map(Double.init), size: 8)
            let x = try Tensor(cube.map { -$0 }, shape: [1, 1, 8, 8, 8])
            let q = try Torch.withNoGrad { (try member(x).sigmoid().item() + member(x.flip([4])).sigmoid().item()) / 2 }
            #expect(abs(try #require(peak.classifier) - q) < 1e-6)
        }
        #expect(try predictor.predict(series).probabilities == result.probabilities)
        let pipeline = BatchPrediction(workers: 1, queueDepth: 1)
        pipeline.run(["\(root)/data/series/\(dark)"], predictor: predictor, loader: SeriesLoader()) { _, outcome in
            #expect(outcome.error == nil && outcome.probabilities == result.probabilities, "\(outcome.error ?? "")")
        }
        #expect(throws: TorchError.self, "no contrast, no score") { try predictor.infer(input, heatmap: false) }
    }

    /// With a context channel, every candidate's example also holds the wider cube (each sample the mean
    /// of 2³, cut as much wider as the jitter needs); a batch cuts and turns both channels alike, the
    /// context to the nearest whole context sample of the cube's shift; the weights record the scale, and
    /// prediction shows the classifier the same two channels.
    @Test func aContextChannelShowsTheClassifierAWiderCubeInTrainingAndPrediction() throws {
        let root = try temporaryDirectory()
        let detector = try detectorWithPrior(seed: 33, in: root)
        var training = training(root, detector: detector)
        training.contextScale = 2
        #expect(training.contextJitter == 1, "a jitter of 2 samples is one context sample")
        try training.run()

        let predictor = try Predictor(weights: detector)
        let cache = PreprocessedCache(root: "\(root)/data/.willis-cache", preparation: predictor.preparation)
        let uid = try RSNATables.readLabels("\(root)/data/train.csv").map(\.seriesInstanceUID).sorted()[0]
        let input = try cache.load(uid)
        let shape = [16, 32, 32]
        let heat = try #require(try predictor.infer(input, heatmap: true).heatmap)
        let peaks = HeatmapPeak.find(heat, shape: shape, count: 6, threshold: 0)
        let mine = try training.examples([uid], cache: cache, predictor: predictor, seriesRoot: "\(root)/data/series").filter(\.isPeak)
        #expect(mine.count == peaks.count && !peaks.isEmpty)
        for (example, peak) in zip(mine, peaks) {
            let centre = peak.voxel.map(Double.init)
            #expect(example.context == CandidateClassifier.contextCube(input, shape: shape, centre: centre, size: 10, scale: 2))
            // Cut at the centre: the view prediction shows.
            let centred = try training.batch([example], offsets: nil, flips: nil)
            #expect(centred.shape == [1, 2, 8, 8, 8])
            #expect(try centred.floats() == CandidateClassifier.view(input, shape: shape, centre: centre, size: 8, contextScale: 2))
            // Shifted by (+1, −2, 0) samples: the context by (+1, −1, 0) of its own, that is (+2, −2, 0) samples.
            let shifted = try training.batch([example], offsets: [[3, 0, 2]], flips: nil).floats()
            #expect(Array(shifted[..<512]) == CandidateClassifier.cube(input, shape: shape, centre: [centre[0] + 1, centre[1] - 2, centre[2]], size: 8))
            #expect(Array(shifted[512...]) == CandidateClassifier.contextCube(input, shape: shape, centre: [centre[0] + 2, centre[1] - 2, centre[2]], size: 8, scale: 2))
            // A flip turns both channels.
            let flipped = try training.batch([example], offsets: nil, flips: [[true, false, true]])
            #expect(try flipped.floats() == centred.flip([2, 4]).floats())
        }

        let weights = "\(root)/stage2/candidate-classifier.safetensors"
        let settings = try JSONDecoder().decode(CandidateClassifierSettings.self,
                                                from: Data(try #require(try SafeTensorsFile(path: weights).metadata[CandidateClassifierSettings.metadataKey]).utf8))
        #expect(settings.contextScale == 2)
        #expect(try SafeTensorsFile(path: weights).tensor("block0.conv.weight").shape == [4, 2, 3, 3, 3])
        try predictor.useCandidateClassifier(at: weights, scoring: .classifier)
        let member = try #require(predictor.candidateStage).members[0].classifier
        let result = try predictor.infer(input, heatmap: false)
        for peak in try #require(result.peaks) {
            let view = CandidateClassifier.view(input, shape: shape, centre: peak.voxel.map(Double.init), size: 8, contextScale: 2)
            let x = try Tensor(view, shape: [1, 2, 8, 8, 8])
            let q = try Torch.withNoGrad { (try member(x).sigmoid().item() + member(x.flip([4])).sigmoid().item()) / 2 }
            #expect(abs(try #require(peak.classifier) - q) < 1e-6)
        }

        // Weights whose settings ask for a context the network cannot take are refused as a bad file.
        let file = try SafeTensorsFile(path: weights)
        var tensors: [(String, Tensor)] = []
        for name in file.names where !name.hasPrefix("__") { tensors.append((name, try file.tensor(name))) }
        var metadata = file.metadata
        var wide = settings
        wide.contextScale = 64
        metadata[CandidateClassifierSettings.metadataKey] = String(decoding: try JSONEncoder().encode(wide), as: UTF8.self)
        try SafeTensors.write(tensors, metadata: metadata, to: "\(root)/wide.safetensors")
        #expect(throws: TorchError.self) { try Predictor(weights: detector).useCandidateClassifier(at: "\(root)/wide.safetensors", scoring: .classifier) }
    }

    /// A deeper classifier (`depth`) is trained, its depth written in the weights' settings, and read at
    /// that depth by prediction: the peaks' probabilities are the trained network's own.
    @Test func aDeeperClassifierIsTrainedAndReadAtItsDepth() throws {
        let root = try temporaryDirectory()
        let detector = try detectorWithPrior(seed: 35, in: root)
        var training = training(root, detector: detector)
        training.depth = 2
        try training.run()

        let weights = "\(root)/stage2/candidate-classifier.safetensors"
        let file = try SafeTensorsFile(path: weights)
        let settings = try JSONDecoder().decode(CandidateClassifierSettings.self,
                                                from: Data(try #require(file.metadata[CandidateClassifierSettings.metadataKey]).utf8))
        #expect(settings.depth == 2)
        #expect(try file.tensor("residual2.0.conv.weight").shape == [16, 16, 3, 3, 3])
        let predictor = try Predictor(weights: detector)
        try predictor.useCandidateClassifier(at: weights, scoring: .classifier)
        let member = try #require(predictor.candidateStage).members[0].classifier
        #expect(member.depth == 2)
        let cache = PreprocessedCache(root: "\(root)/data/.willis-cache", preparation: predictor.preparation)
        let uid = try RSNATables.readLabels("\(root)/data/train.csv").map(\.seriesInstanceUID).sorted()[0]
        let input = try cache.load(uid)
        let peaks = try #require(try predictor.infer(input, heatmap: false).peaks)
        #expect(!peaks.isEmpty)
        for peak in peaks {
            let x = try Tensor(CandidateClassifier.cube(input, shape: [16, 32, 32], centre: peak.voxel.map(Double.init), size: 8), shape: [1, 1, 8, 8, 8])
            let q = try Torch.withNoGrad { (try member(x).sigmoid().item() + member(x.flip([4])).sigmoid().item()) / 2 }
            #expect(abs(try #require(peak.classifier) - q) < 1e-6)
        }
    }

    /// With `ignoreMM`, the false candidates between `matchMM` and it from a localizer point are left out
    /// of training, and only they; the peaks scored after training keep them. Every candidate records its
    /// distance to the nearest point, and is an aneurysm exactly when that is within `matchMM`.
    @Test func falseCandidatesNearALocalizerPointCanBeLeftOutOfTraining() throws {
        let root = try temporaryDirectory()
        let detector = try detectorWithPrior(seed: 33, in: root)
        var training = training(root, detector: detector)
        training.matchMM = 4.8  // one voxel of the grid
        let base = try training.run()

        let predictor = try Predictor(weights: detector)
        let cache = PreprocessedCache(root: "\(root)/data/.willis-cache", preparation: predictor.preparation)
        let uids = try RSNATables.readLabels("\(root)/data/train.csv").map(\.seriesInstanceUID).sorted()
        let heldOut = Set(uids.enumerated().filter { $0.offset % 10 == 0 }.map(\.element))
        let all = try training.examples(uids, cache: cache, predictor: predictor, seriesRoot: "\(root)/data/series")
        for e in all where e.isPeak {
            let hasPoints = !(try cache.detectionTargets(e.uid).points.isEmpty)
            #expect((e.nearestPointMM != nil) == hasPoints)
            #expect(e.positive == ((e.nearestPointMM ?? .infinity) <= training.matchMM))
        }
        let zone = all.filter { !heldOut.contains($0.uid) && !$0.positive && ($0.nearestPointMM ?? .infinity) <= 20 }
        try #require(!zone.isEmpty, "some false candidates lie within 20 mm of a point")
        #expect(zone.allSatisfy { training.isIgnored($0) == false }, "no zone without ignoreMM")

        training.ignoreMM = 20
        #expect(zone.allSatisfy(training.isIgnored))
        #expect(!all.filter(\.positive).contains(where: training.isIgnored))
        let report = try training.run()
        #expect(report.trainingExamples.negative == base.trainingExamples.negative - zone.count)
        #expect(report.trainingExamples.positive == base.trainingExamples.positive)
        #expect(report.heldOutPeaks.positive == base.heldOutPeaks.positive && report.heldOutPeaks.negative == base.heldOutPeaks.negative,
                "the scored peaks keep them")
    }

    /// The detector's peaks are kept in the cache and read back by the next run with the same detector
    /// weights, into any output folder (a stored peak that was changed by hand comes back changed), and
    /// read again from the detector once its weights file changes.
    @Test func peaksAreKeptForTheNextRunOfTheSameDetector() throws {
        let root = try temporaryDirectory()
        let detector = try detectorWithPrior(seed: 33, in: root)
        let training = training(root, detector: detector)
        let predictor = try Predictor(weights: detector)
        let cache = PreprocessedCache(root: "\(root)/data/.willis-cache", preparation: predictor.preparation)
        try training.run()
        let uid = try RSNATables.readLabels("\(root)/data/train.csv").map(\.seriesInstanceUID).sorted()[1]
        let stored = "\(try training.peaksFolder(cache))/\(uid).json"
        #expect(stored.hasPrefix(cache.folder + "/peaks-"))
        #expect(!FileManager.default.fileExists(atPath: "\(try training.peaksFolder(cache))/\(uid).heatmap.f32"), "no heatmap kept without the dot filter")
        var elsewhere = training
        elsewhere.output = "\(root)/another-run"
        let first = try elsewhere.examples([uid], cache: cache, predictor: predictor, seriesRoot: "\(root)/data/series").filter(\.isPeak)
        #expect(!first.isEmpty)
        var json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: stored))) as? [String: Any])
        var probabilities = try #require(json["probabilities"] as? [Double])
        probabilities[0] = 0.123
        json["probabilities"] = probabilities
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: stored))
        #expect(try elsewhere.examples([uid], cache: cache, predictor: predictor, seriesRoot: "\(root)/data/series").filter(\.isPeak).first?.heatmap == 0.123)
        // New weights in the same file: the peaks are read from the detector again.
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: 60)], ofItemAtPath: detector)
        #expect(try elsewhere.examples([uid], cache: cache, predictor: predictor, seriesRoot: "\(root)/data/series").filter(\.isPeak).map(\.heatmap) == first.map(\.heatmap))
    }

    /// A training cube cut at an offset, with its axes reordered and flipped, equals libtorch's narrow,
    /// permute and flip of the same cube, for every one of the 48 orders and flips.
    @Test func trainingCubesAreTurnedAsLibtorchTurnsThem() throws {
        let (size, p) = (7, 5)
        let cube = (0..<(size * size * size)).map { Float($0) }
        let whole = try Tensor(cube, shape: [size, size, size])
        for axes in CandidateClassifierTraining.axisOrders {
            for code in 0..<8 {
                let flips = (0..<3).map { code >> $0 & 1 == 1 }
                let offset = [code % 3, (code + 1) % 3, 2 - code % 3]
                let mine = CandidateClassifierTraining.patch(cube, size: size, patch: p, offset: offset, flips: flips, axes: axes)
                // Tensor dims are z, y, x: dim t is x-y-z axis 2 − t.
                let window = try whole.narrow(dim: 0, start: offset[2], length: p).narrow(dim: 1, start: offset[1], length: p)
                    .narrow(dim: 2, start: offset[0], length: p)
                let turned = try window.permute((0..<3).map { 2 - axes[2 - $0] }).flip((0..<3).filter { flips[2 - $0] })
                #expect(mine == (try turned.contiguous().floats()), "axes \(axes), flips \(flips)")
            }
        }
        // The identity is the plain window: value (z·7 + y)·7 + x at (x, y, z) + offset.
        let plain = CandidateClassifierTraining.patch(cube, size: size, patch: p, offset: [1, 2, 0], flips: [false, false, false])
        #expect(plain[0] == Float((0 * size + 2) * size + 1) && plain[p - 1] == Float((0 * size + 2) * size + 1 + p - 1))
    }

    /// The sampler draws a share of the negatives in proportion to their heatmap value and the rest
    /// uniformly; with no share it draws exactly what uniform sampling drew before the option existed.
    @Test func hardNegativesAreDrawnInProportionToTheHeatmap() {
        let heat = [0.01, 0.09, 0.3, 0.6]
        func frequencies(_ share: Double, batch: Int, power: Double = 1) -> [Double] {
            let sampler = NegativeSampler(heatmaps: heat, hardShare: share, power: power)
            var rng = SplitMix64(seed: 5, stream: 7)
            var counts = [0, 0, 0, 0]
            for _ in 0..<20_000 { for i in sampler.draw(batch, using: &rng) { counts[i] += 1 } }
            return counts.map { Double($0) / Double(20_000 * batch) }
        }
        let total = heat.reduce(0, +)
        for (share, batch) in [(0.0, 16), (1.0, 16), (0.5, 16), (0.25, 8)] {
            let expected = heat.map { (1 - share) * 0.25 + share * $0 / total }
            let measured = frequencies(share, batch: batch)
            for (m, e) in zip(measured, expected) { #expect(abs(m - e) < 0.005, "share \(share): \(measured) against \(expected)") }
        }
        // A power of 2: in proportion to the squares.
        let squares = heat.map { $0 * $0 }, sum = squares.reduce(0, +)
        for (m, e) in zip(frequencies(1, batch: 16, power: 2), squares.map { $0 / sum }) { #expect(abs(m - e) < 0.005) }
        // Share 0: the same indices as `Int.random` on the same generator.
        var a = SplitMix64(seed: 9, stream: 7), b = SplitMix64(seed: 9, stream: 7)
        let drawn = NegativeSampler(heatmaps: heat, hardShare: 0).draw(50, using: &a)
        #expect(drawn == (0..<50).map { _ in Int.random(in: 0..<4, using: &b) })
        // No weight at all (every value 0) falls back to uniform; no negatives draw nothing.
        var rng = SplitMix64(seed: 1, stream: 7)
        #expect(NegativeSampler(heatmaps: [0, 0, 0], hardShare: 1).draw(30, using: &rng).allSatisfy { (0..<3).contains($0) })
        #expect(NegativeSampler(heatmaps: [], hardShare: 1).draw(30, using: &rng).isEmpty)
    }

    /// The rank rule marks each series' R strongest false peaks, whatever their values against other
    /// series' (ties keep the earlier peak), and the sampler then draws its hard share from those alone.
    @Test func rankWeightsPickEachSeriesStrongestFalsePeaks() {
        let heat = [0.05, 0.40, 0.02, 0.03, 0.30, 0.31, 0.01, 0.02, 0.02, 0.9]
        let series = ["a", "a", "b", "b", "a", "a", "c", "c", "c", "a"]
        #expect(NegativeSampler.rankWeights(heatmaps: heat, series: series, rank: 1) == [0, 0, 0, 1, 0, 0, 0, 1, 0, 1])
        #expect(NegativeSampler.rankWeights(heatmaps: heat, series: series, rank: 2) == [0, 1, 1, 1, 0, 0, 0, 1, 1, 1])
        #expect(NegativeSampler.rankWeights(heatmaps: heat, series: series, rank: 3) == [0, 1, 1, 1, 0, 1, 1, 1, 1, 1])
        #expect(NegativeSampler.rankWeights(heatmaps: heat, series: series, rank: 0).allSatisfy { $0 == 0 })
        // Independently: a peak is marked when fewer than R peaks of its series rank above it.
        for rank in 1...5 {
            let expected = heat.indices.map { i in
                heat.indices.filter { j in series[j] == series[i] && (heat[j] > heat[i] || (heat[j] == heat[i] && j < i)) }.count < rank ? 1.0 : 0.0
            }
            #expect(NegativeSampler.rankWeights(heatmaps: heat, series: series, rank: rank) == expected, "rank \(rank)")
        }
        let weights = NegativeSampler.rankWeights(heatmaps: heat, series: series, rank: 1)
        var rng = SplitMix64(seed: 3, stream: 7)
        let drawn = NegativeSampler(weights: weights, hardShare: 1).draw(3000, using: &rng)
        #expect(Set(drawn) == [3, 7, 9])
        for i in [3, 7, 9] {
            let share: Double = Double(drawn.filter { $0 == i }.count) / 3000
            #expect(abs(share - 1.0 / 3) < 0.03, "peak \(i): \(share) of the draws")
        }
    }

    /// `hardNegativeShare` reaches the training batches: with every kept peak made faint but one false
    /// peak, the batches' negatives are almost all that peak when the whole share is weighted, and
    /// rarely it when none is.
    @Test func hardNegativeShareShapesTheTrainingBatches() throws {
        let root = try temporaryDirectory()
        let detector = try detectorWithPrior(seed: 37, in: root)
        var training = training(root, detector: detector)
        training.steps = 10
        training.batchSize = 8
        try training.run()  // reads and keeps the peaks
        let predictor = try Predictor(weights: detector)
        let cache = PreprocessedCache(root: "\(root)/data/.willis-cache", preparation: predictor.preparation)
        let uids = try RSNATables.readLabels("\(root)/data/train.csv").map(\.seriesInstanceUID).sorted()
        let folder = try training.peaksFolder(cache)
        var strong: (uid: String, index: Int)?
        // The first series (in UID order) is held out, as every tenth is, so the strong peak is taken from the others.
        for uid in uids.dropFirst() {
            let peaks = try training.examples([uid], cache: cache, predictor: predictor, seriesRoot: "\(root)/data/series").filter(\.isPeak)
            if strong == nil, let i = peaks.firstIndex(where: { !$0.positive }) { strong = (uid, i) }
        }
        let chosen = try #require(strong)
        var negatives = 0
        for uid in uids {
            let path = "\(folder)/\(uid).json"
            var json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
            let count = try #require(json["probabilities"] as? [Double]).count
            json["probabilities"] = (0..<count).map { uid == chosen.uid && $0 == chosen.index ? 1.0 : 0.001 }
            try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: path))
            if uid == uids[0] { continue }
            negatives += try training.examples([uid], cache: cache, predictor: predictor, seriesRoot: "\(root)/data/series").filter { $0.isPeak && !$0.positive }.count
        }
        #expect(negatives > 10)
        training.hardNegativeShare = 1
        let weighted = try training.run().drawnNegativeHeatmap
        training.hardNegativeShare = 0
        let uniform = try training.run().drawnNegativeHeatmap
        // Expected means: Σp² / Σp drawn in proportion, Σp / n drawn uniformly.
        let faint = 0.001 * Double(negatives - 1)
        let expected = (weighted: (1 + 0.001 * faint) / (1 + faint), uniform: (1 + faint) / Double(negatives))
        #expect(weighted > 0.8, "weighted draws: mean heatmap \(weighted), expected about \(expected.weighted)")
        #expect(uniform < 0.2, "uniform draws: mean heatmap \(uniform), expected about \(expected.uniform)")
    }

    /// With a validation folder, every training series trains and the classifier is scored on that
    /// folder's peaks; a positive folder adds exactly its localizer points, and no peaks are read there; a
    /// series in two of the folders is refused.
    @Test func validationAndPositiveFoldersServeAsSaid() throws {
        let root = try temporaryDirectory()
        let detector = try detectorWithPrior(seed: 34, in: root)
        try positiveSeries(seed: 35, into: "\(root)/val")
        try positiveSeries(seed: 36, into: "\(root)/points")
        try positiveSeries(seed: 37, into: "\(root)/more")
        var training = training(root, detector: detector)
        training.validationRoot = "\(root)/val"
        training.positiveRoots = ["\(root)/points"]
        training.furtherDataRoots = ["\(root)/more"]
        let report = try training.run()

        let predictor = try Predictor(weights: detector)
        func cache(_ folder: String) -> PreprocessedCache {
            PreprocessedCache(root: "\(root)/\(folder)/.willis-cache", preparation: predictor.preparation)
        }
        func examples(_ folder: String, readingPeaks: Bool) throws -> [CandidateClassifierTraining.Example] {
            let uids = try RSNATables.readLabels("\(root)/\(folder)/train.csv").map(\.seriesInstanceUID).sorted()
            return try training.examples(uids, cache: cache(folder), predictor: predictor, seriesRoot: "\(root)/\(folder)/series", readingPeaks: readingPeaks)
        }
        let peaksFolder = try training.peaksFolder(cache("points"))
        #expect(!FileManager.default.fileExists(atPath: peaksFolder), "no peaks are read in a positive folder")
        let trained = try examples("data", readingPeaks: true)
        let points = try examples("points", readingPeaks: false)
        #expect(!points.isEmpty && points.allSatisfy { $0.positive && !$0.isPeak })
        // A further training folder gives its peaks (false ones too) and its points, as the first folder does.
        let more = try examples("more", readingPeaks: true)
        #expect(more.contains { $0.isPeak && !$0.positive } && more.contains { !$0.isPeak && $0.positive })
        #expect(report.trainingExamples.positive == trained.filter(\.positive).count + points.count + more.filter(\.positive).count,
                "every training series trains")
        #expect(report.trainingExamples.negative == trained.filter { !$0.positive }.count + more.filter { !$0.positive }.count)
        let validation = try examples("val", readingPeaks: true).filter(\.isPeak)
        #expect(!validation.isEmpty)
        #expect(report.heldOutPeaks.positive == validation.filter(\.positive).count
            && report.heldOutPeaks.negative == validation.filter { !$0.positive }.count)

        training.positiveRoots = ["\(root)/val"]
        #expect(throws: DatasetError.self) { try training.run() }
        training.positiveRoots = ["\(root)/more"]
        #expect(throws: DatasetError.self, "a folder both a positive and a training folder") { try training.run() }
        training.furtherDataRoots = []
        training.positiveRoots = []
        training.validationRoot = "\(root)/data"
        #expect(throws: DatasetError.self) { try training.run() }
        // The tables are compared before anything is prepared: a folder holding only a copy of the training
        // table (no series to read) is refused for sharing them, and gets no cache.
        training.validationRoot = "\(root)/val"
        try FileManager.default.createDirectory(atPath: "\(root)/copy", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: "\(root)/data/train.csv", toPath: "\(root)/copy/train.csv")
        training.positiveRoots = ["\(root)/copy"]
        #expect { try training.run() } throws: { ($0 as? DatasetError)?.reason.contains("also in \(root)/data") == true }
        #expect(!FileManager.default.fileExists(atPath: "\(root)/copy/.willis-cache"))
    }

    /// Training fits, for each scoring rule, the calibration of its scores on the validation peaks (with
    /// the classifier's probabilities read as prediction reads them) and writes it with the weights.
    /// Prediction maps each peak's combined score through the calibration of its rule, unless asked not
    /// to; a calibration that would reverse the order, or cannot be read, is refused.
    @Test func calibrationIsFittedOnValidationPeaksAndMapsEveryPeak() throws {
        let root = try temporaryDirectory()
        let detector = try detectorWithPrior(seed: 34, in: root)
        try positiveSeries(seed: 35, into: "\(root)/val")
        var training = training(root, detector: detector)
        training.validationRoot = "\(root)/val"
        let report = try training.run()
        let weights = "\(root)/stage2/candidate-classifier.safetensors"
        let file = try SafeTensorsFile(path: weights)
        let stored = try JSONDecoder().decode([String: CandidateCalibration].self,
                                              from: Data(try #require(file.metadata[CandidateCalibration.metadataKey]).utf8))
        #expect(stored == report.calibrations)

        // The fit, recomputed from the validation peaks and the saved classifier.
        let predictor = try Predictor(weights: detector)
        let cache = PreprocessedCache(root: "\(root)/val/.willis-cache", preparation: predictor.preparation)
        let uids = try RSNATables.readLabels("\(root)/val/train.csv").map(\.seriesInstanceUID).sorted()
        let peaks = try training.examples(uids, cache: cache, predictor: predictor, seriesRoot: "\(root)/val/series").filter(\.isPeak)
        try #require(peaks.contains(where: \.positive) && peaks.contains { !$0.positive }, "the validation peaks hold both classes")
        let reader = try Predictor(weights: detector)
        try reader.useCandidateClassifier(at: weights, scoring: .classifier, calibrated: false)
        let q = try training.probabilities(try #require(reader.candidateStage).members[0].classifier, peaks).q
        for rule in CandidateScoring.allCases {
            let expected = CandidateCalibration.fit(scores: zip(peaks, q).map { rule.combine(heatmap: $0.heatmap, classifier: $1) },
                                                    labels: peaks.map(\.positive), source: "peaks of \(root)/val")
            let ours = report.calibrations[rule.rawValue]
            #expect((ours == nil) == (expected == nil), "\(rule)")
            if let ours, let expected {
                #expect(abs(ours.slope - expected.slope) < 1e-9 && abs(ours.intercept - expected.intercept) < 1e-9 && ours.peaks == peaks.count)
                #expect(ours.source == expected.source && ours.positives == expected.positives)
            }
        }

        // A known calibration, written by hand, maps every peak's √(p·q).
        var metadata = file.metadata
        let known = CandidateCalibration(slope: 2, intercept: -3, peaks: 10, positives: 1, source: "by hand")
        metadata[CandidateCalibration.metadataKey] = String(decoding: try JSONEncoder().encode([CandidateScoring.geometricMean.rawValue: known]), as: UTF8.self)
        let tensors = try file.names.filter { !$0.hasPrefix("__") }.map { ($0, try file.tensor($0)) }
        try SafeTensors.write(tensors, metadata: metadata, to: "\(root)/known.safetensors")
        let calibrated = try Predictor(weights: detector), raw = try Predictor(weights: detector)
        try calibrated.useCandidateClassifier(at: "\(root)/known.safetensors", scoring: .geometricMean)
        try raw.useCandidateClassifier(at: "\(root)/known.safetensors", scoring: .geometricMean, calibrated: false)
        #expect(calibrated.candidateStage?.calibrations == [known] && raw.candidateStage?.calibrations == [nil])
        let input = try cache.load(uids[0])
        let a = try #require(try calibrated.infer(input, heatmap: false).peaks), b = try #require(try raw.infer(input, heatmap: false).peaks)
        #expect(!a.isEmpty && a.map(\.voxel) == b.map(\.voxel), "the map keeps the peaks' order")
        for (x, y) in zip(a, b) {
            let combined = CandidateScoring.geometricMean.combine(heatmap: try #require(y.heatmap), classifier: try #require(y.classifier))
            #expect(abs(y.probability - combined) < 1e-12)
            #expect(abs(x.probability - 1 / (1 + exp(-(2 * log(combined / (1 - combined)) - 3)))) < 1e-9)
        }
        // An ensemble of this classifier (the known map) and one with other weights and another map: each
        // peak's probability is the mean of the two members' calibrated √(p·q), from the same peaks.
        let second = CandidateCalibration(slope: 0.5, intercept: 1, peaks: 10, positives: 1, source: "by hand, second")
        var secondMetadata = metadata
        secondMetadata[CandidateCalibration.metadataKey] = String(decoding: try JSONEncoder().encode([CandidateScoring.geometricMean.rawValue: second]), as: UTF8.self)
        let perturbed = try tensors.map { ($0.0, try $0.0.hasSuffix("weight") ? $0.1 * 1.25 : $0.1) }
        try SafeTensors.write(perturbed, metadata: secondMetadata, to: "\(root)/second.safetensors")
        let rawSecond = try Predictor(weights: detector), ensemble = try Predictor(weights: detector)
        try rawSecond.useCandidateClassifier(at: "\(root)/second.safetensors", scoring: .geometricMean, calibrated: false)
        try ensemble.useCandidateClassifiers(at: ["\(root)/known.safetensors", "\(root)/second.safetensors"], scoring: .geometricMean)
        #expect(ensemble.candidateStage?.calibrations == [known, second])
        let c = try #require(try rawSecond.infer(input, heatmap: false).peaks), e = try #require(try ensemble.infer(input, heatmap: false).peaks)
        #expect(Set(e.map(\.voxel)) == Set(b.map(\.voxel)) && e.count == b.count)
        #expect(zip(b, c).contains { abs(($0.classifier ?? 0) - ($1.classifier ?? 0)) > 1e-4 } || b.map(\.voxel) != c.map(\.voxel),
                "the second member's weights give other probabilities")
        for peak in e {
            let y = try #require(b.first { $0.voxel == peak.voxel }), z = try #require(c.first { $0.voxel == peak.voxel })
            #expect(abs(peak.probability - (known(y.probability) + second(z.probability)) / 2) < 1e-9)
            let meanQ: Double = ((y.classifier ?? .nan) + (z.classifier ?? .nan)) / 2
            #expect(abs((peak.classifier ?? .nan) - meanQ) < 1e-9)
        }
        #expect(zip(e, e.dropFirst()).allSatisfy { $0.probability >= $1.probability })
        // The 14 probabilities: by default (`series`) the mean of what each member predicts alone; with
        // `candidates`, the readout of the peaks' mean scores above.
        let secondAlone = try Predictor(weights: detector)
        try secondAlone.useCandidateClassifier(at: "\(root)/second.safetensors", scoring: .geometricMean)
        let (pa, pb) = (try calibrated.infer(input, heatmap: false).probabilities, try secondAlone.infer(input, heatmap: false).probabilities)
        let bySeries = try ensemble.infer(input, heatmap: false).probabilities
        #expect(ensemble.candidateStage?.combination == .series && bySeries.count == 14)
        for c in 0..<14 { #expect(abs(bySeries[c] - (pa[c] + pb[c]) / 2) < 1e-12, "column \(c)") }
        ensemble.candidateStage?.combination = .candidates
        let byCandidates = try ensemble.infer(input, heatmap: false)
        guard case let .candidates(readout) = ensemble.readout else { Issue.record("no candidate readout"); return }
        #expect(byCandidates.probabilities == readout.probabilities(try #require(byCandidates.peaks), grid: ensemble.preparation.cropGrid))
        #expect(try #require(byCandidates.peaks).map(\.probability) == e.map(\.probability), "the peaks are the same either way")
        #expect(zip(byCandidates.probabilities, bySeries).contains { abs($0 - $1) > 1e-9 }, "the two combinations differ")
        // Members that cannot be averaged are refused: one calibrated and one not.
        try SafeTensors.write(tensors, metadata: file.metadata.filter { $0.key != CandidateCalibration.metadataKey }, to: "\(root)/uncalibrated.safetensors")
        #expect(throws: TorchError.self) {
            try Predictor(weights: detector).useCandidateClassifiers(at: ["\(root)/known.safetensors", "\(root)/uncalibrated.safetensors"], scoring: .geometricMean)
        }
        try Predictor(weights: detector).useCandidateClassifiers(at: ["\(root)/known.safetensors", "\(root)/uncalibrated.safetensors"],
                                                                 scoring: .geometricMean, calibrated: false)
        var morePeaks = try JSONDecoder().decode(CandidateClassifierSettings.self, from: Data(try #require(metadata[CandidateClassifierSettings.metadataKey]).utf8))
        morePeaks.peaksPerSeries += 1
        var morePeaksMetadata = metadata
        morePeaksMetadata[CandidateClassifierSettings.metadataKey] = String(decoding: try JSONEncoder().encode(morePeaks), as: UTF8.self)
        try SafeTensors.write(tensors, metadata: morePeaksMetadata, to: "\(root)/more-peaks.safetensors")
        // Members that read other peaks join series by series only.
        let morePeaksEnsemble = try Predictor(weights: detector)
        try morePeaksEnsemble.useCandidateClassifiers(at: ["\(root)/known.safetensors", "\(root)/more-peaks.safetensors"], scoring: .geometricMean)
        #expect(morePeaksEnsemble.candidateStage?.readsOneCandidateSet == false && morePeaksEnsemble.candidateStage?.combinationError == nil)
        morePeaksEnsemble.candidateStage?.combination = .candidates
        #expect(morePeaksEnsemble.candidateStage?.combinationError?.hasPrefix("the mean score per candidate") == true)
        // No calibration for the rule asked for: the scores as they are.
        let other = try Predictor(weights: detector)
        try other.useCandidateClassifier(at: "\(root)/known.safetensors", scoring: .classifier)
        #expect(other.candidateStage?.calibrations == [nil])
        // A reversing or unreadable calibration is refused.
        for bad in [String(decoding: try JSONEncoder().encode(["geometric-mean": CandidateCalibration(slope: -1, intercept: 0, peaks: 1, positives: 1, source: "")]), as: UTF8.self), "{not json"] {
            metadata[CandidateCalibration.metadataKey] = bad
            try SafeTensors.write(tensors, metadata: metadata, to: "\(root)/bad.safetensors")
            #expect(throws: TorchError.self) { try Predictor(weights: detector).useCandidateClassifier(at: "\(root)/bad.safetensors", scoring: .geometricMean) }
        }
    }

    /// The dot filter's candidates of the series under `folder`, computed here from the series and its
    /// prepared grid (the cache's record): nearest grid voxels, those off the grid left out.
    func dotFilterPoints(_ uid: String, folder: String, cache: PreprocessedCache, count: Int, depthMM: Double,
                         peakSearch: DotFilter.PeakSearch = .acrossScales) throws -> [[Int]] {
        let series = try SeriesLoader().load("\(folder)/\(uid)")
        let record = try JSONDecoder().decode(PreparationRecord.self, from: Data(contentsOf: URL(fileURLWithPath: cache.recordPath(uid))))
        let contrast = DotFilter.VesselContrast(series)
        let shape = cache.preparation.shape
        return DotFilter(peakSearch: peakSearch).candidates(series.volume, contrast: contrast, count: count, depthMM: depthMM).compactMap { c in
            let v = record.output.voxel(c.point)
            let voxel = [Int(v.x.rounded()), Int(v.y.rounded()), Int(v.z.rounded())]
            return voxel[0] >= 0 && voxel[0] < shape[2] && voxel[1] >= 0 && voxel[1] < shape[1] && voxel[2] >= 0 && voxel[2] < shape[0] ? voxel : nil
        }
    }

    /// With the dot filter as a second source, training adds its candidates to the heatmap's peaks (those
    /// within the separation of a peak or of a stronger candidate left out), labels and cuts them as it
    /// does the peaks, keeps them in the cache, and writes the setting with the weights. Prediction then
    /// adds the same candidates, scores them with the classifier, and the results folder names them.
    @Test func dotFilterCandidatesAreTrainedOnAndAddedInPrediction() throws {
        let root = try temporaryDirectory()
        let detector = try detectorWithPrior(seed: 38, in: root)
        var training = training(root, detector: detector)
        training.dotFilter = DotFilterCandidates(count: 5, depthMM: 8, separationMM: 10)
        let report = try training.run()
        #expect(report.trainingExamples.positive > 0 && report.trainingExamples.negative > 0)

        let predictor = try Predictor(weights: detector)
        let shape = predictor.preparation.shape
        let cache = PreprocessedCache(root: "\(root)/data/.willis-cache", preparation: predictor.preparation)
        let uids = try RSNATables.readLabels("\(root)/data/train.csv").map(\.seriesInstanceUID).sorted()
        func distanceMM(_ a: [Int], _ b: [Int]) -> Double {
            (0..<3).map { Double(a[$0] - b[$0]) * 4.8 }.map { $0 * $0 }.reduce(0, +).squareRoot()
        }
        var expected: [String: [[Int]]] = [:]
        // Three of the six series: the filter is slow in a debug build.
        for uid in uids.prefix(3) {
            let points = try dotFilterPoints(uid, folder: "\(root)/data/series", cache: cache, count: 5, depthMM: 8)
            let input = try cache.load(uid)
            let heat = try #require(try predictor.infer(input, heatmap: true).heatmap)
            let peaks = HeatmapPeak.find(heat, shape: shape, count: 6, threshold: 0).map(\.voxel)
            var kept: [[Int]] = []
            for p in points where !(peaks + kept).contains(where: { distanceMM(p, $0) <= 10 }) { kept.append(p) }
            expected[uid] = kept
            let targets = try cache.detectionTargets(uid).points
            let mine = try training.examples([uid], cache: cache, predictor: predictor, seriesRoot: "\(root)/data/series")
            #expect(mine.filter { $0.source == .heatmap && $0.isPeak }.count == peaks.count)
            let fromFilter = mine.filter { $0.source == .dotFilter }
            #expect(fromFilter.count == kept.count && fromFilter.allSatisfy(\.isPeak))
            for (example, v) in zip(fromFilter, kept) {
                #expect(example.cube == CandidateClassifier.cube(input, shape: shape, centre: v.map(Double.init), size: 8 + 2 * training.jitter))
                #expect(example.heatmap == Double(heat[(v[2] * shape[1] + v[1]) * shape[2] + v[0]]))
                let near = targets.contains { t in
                    ([t.i, t.j, t.k].enumerated().map { ($0.element - Double(v[$0.offset])) * 4.8 }.map { $0 * $0 }.reduce(0, +)).squareRoot() <= 10
                }
                #expect(example.positive == near)
            }
            #expect(FileManager.default.fileExists(atPath: "\(cache.folder)/dots-r\(DotFilter.revision)-5-8.0/\(uid).json"), "kept for the next run")
            #expect(FileManager.default.fileExists(atPath: "\(try training.peaksFolder(cache))/\(uid).heatmap.f32"), "the heatmap too")
        }
        #expect(expected.values.map(\.count).reduce(0, +) > 0, "the filter adds candidates away from the peaks")

        let weights = "\(root)/stage2/candidate-classifier.safetensors"
        let file = try SafeTensorsFile(path: weights)
        let settings = try JSONDecoder().decode(CandidateClassifierSettings.self,
                                                from: Data(try #require(file.metadata[CandidateClassifierSettings.metadataKey]).utf8))
        #expect(settings.dotFilter == DotFilterCandidates(count: 5, depthMM: 8, separationMM: 10))

        // Prediction reads the setting from the weights and adds the same candidates.
        try predictor.useCandidateClassifier(at: weights, scoring: .classifier)
        #expect(predictor.candidateCount == 11)
        guard let uid = uids.first(where: { !(expected[$0] ?? []).isEmpty }) else { Issue.record("no series with filter candidates"); return }
        let series = try SeriesLoader().load("\(root)/data/series/\(uid)")
        let (input, record) = predictor.prepareWithRecord(series)
        let dots = predictor.dotCandidates(series, record: record)
        #expect(dots == [DotFilterCandidates(count: 5, depthMM: 8, separationMM: 10): try dotFilterPoints(uid, folder: "\(root)/data/series", cache: cache, count: 5, depthMM: 8)])
        let result = try predictor.infer(input, heatmap: true, dotCandidates: dots)
        let peaks = try #require(result.peaks)
        let added = peaks.filter { $0.source == .dotFilter }
        #expect(Set(added.map(\.voxel)) == Set(expected[uid] ?? []) && added.count == expected[uid]?.count)
        let heat = try #require(result.heatmap)
        let member = try #require(predictor.candidateStage).members[0].classifier
        for peak in added {
            let x = try Tensor(CandidateClassifier.cube(input, shape: shape, centre: peak.voxel.map(Double.init), size: 8), shape: [1, 1, 8, 8, 8])
            let q = try Torch.withNoGrad { (try member(x).sigmoid().item() + member(x.flip([4])).sigmoid().item()) / 2 }
            #expect(abs(try #require(peak.classifier) - q) < 1e-6)
            #expect(peak.heatmap == Double(heat[(peak.voxel[2] * shape[1] + peak.voxel[1]) * shape[2] + peak.voxel[0]]))
        }
        #expect(try predictor.predict(series).probabilities == result.probabilities)
        // Given no points (the default), none is added.
        #expect(try predictor.infer(input, heatmap: false).peaks?.contains { $0.source == .dotFilter } == false)

        // The results folder lists them, named.
        var pipeline = BatchPrediction(workers: 1, queueDepth: 1)
        let results = ResultsFolder("\(root)/results")
        pipeline.results = results
        pipeline.run(["\(root)/data/series/\(uid)"], predictor: predictor, loader: SeriesLoader()) { _, outcome in
            #expect(outcome.error == nil && outcome.probabilities == result.probabilities, "\(outcome.error ?? "")")
        }
        let recorded = try #require(results.result(uid)?.candidates)
        #expect(recorded.map(\.voxel) == peaks.map(\.voxel))
        #expect(recorded.map(\.source) == peaks.map { $0.source == .dotFilter ? "dot-filter" : nil })

        // Members that read different candidates (none from the dot filter, or each scale's maxima) each
        // read their own: the series reading is the exact mean of each predicting alone, the evidence lists
        // every member's candidates (one that both read with the mean of their scores), and the mean score
        // per candidate, which needs one set of candidates, is refused. One that names the reading across
        // the scales reads what these weights (which name none) read.
        func weightsReading(_ name: String, _ dots: DotFilterCandidates?) throws -> String {
            var metadata = file.metadata
            var changed = settings
            changed.dotFilter = dots
            metadata[CandidateClassifierSettings.metadataKey] = String(decoding: try JSONEncoder().encode(changed), as: UTF8.self)
            try SafeTensors.write(try file.names.filter { !$0.hasPrefix("__") }.map { ($0, try file.tensor($0)) }, metadata: metadata,
                                  to: "\(root)/\(name).safetensors")
            return "\(root)/\(name).safetensors"
        }
        #expect(settings.dotFilter?.peakSearch == nil)
        for (n, reading) in [nil, DotFilterCandidates(count: 5, depthMM: 8, separationMM: 10, peakSearch: .eachScale)].enumerated() {
            let other = try weightsReading("other\(n)", reading)
            let mixed = try Predictor(weights: detector)
            try mixed.useCandidateClassifiers(at: [weights, other], scoring: .classifier)
            let stage = try #require(mixed.candidateStage)
            #expect(!stage.readsOneCandidateSet && stage.combination == .series)
            #expect(mixed.candidateCount == 11 + (reading == nil ? 6 : 11), "each set's candidates count")
            let own = mixed.dotCandidates(series, record: record)
            let firstDots = try #require(settings.dotFilter)
            #expect(own[firstDots] == dots[firstDots] && dots.count == 1)
            #expect(Set(own.keys) == Set([settings.dotFilter, reading].compactMap { $0 }))
            let alone = try Predictor(weights: detector)
            try alone.useCandidateClassifier(at: other, scoring: .classifier)
            let otherResult = try alone.infer(input, heatmap: false, dotCandidates: alone.dotCandidates(series, record: record))
            let both = try mixed.infer(input, heatmap: false, dotCandidates: own)
            #expect(both.probabilities == zip(result.probabilities, otherResult.probabilities).map { ($0 + $1) / 2 })
            let listed = try #require(both.peaks), firstPeaks = peaks, otherPeaks = try #require(otherResult.peaks)
            #expect(Set(listed.map(\.voxel)) == Set(firstPeaks.map(\.voxel) + otherPeaks.map(\.voxel)) && listed.count == Set(listed.map(\.voxel)).count)
            #expect(listed.map(\.probability) == listed.map(\.probability).sorted(by: >))
            for peak in listed {
                let scores = [firstPeaks, otherPeaks].compactMap { $0.first { $0.voxel == peak.voxel }?.probability }
                #expect(abs(peak.probability - scores.reduce(0, +) / Double(scores.count)) < 1e-12)
            }
            if reading == nil { #expect(Set(firstPeaks.map(\.voxel)).isStrictSuperset(of: Set(otherPeaks.map(\.voxel))), "the other reads no dot-filter candidate") }
            mixed.candidateStage?.combination = .candidates
            #expect(throws: TorchError.self) { try mixed.infer(input, heatmap: false, dotCandidates: own) }
            #expect(mixed.candidateStage?.combinationError?.contains("--candidate-ensemble series") == true)
        }
        let named = try weightsReading("named", DotFilterCandidates(count: 5, depthMM: 8, separationMM: 10, peakSearch: .acrossScales))
        let ensemble = try Predictor(weights: detector)
        try ensemble.useCandidateClassifiers(at: [weights, named], scoring: .classifier)
        #expect(ensemble.dotCandidates(series, record: record) == dots)
    }

    /// The candidate map of a stage with no heatmap, on a tilted grid with unequal spacing: each voxel holds
    /// the strongest candidate within 3 mm of it in the patient (found by brute force), balls overlap by
    /// their maximum, and a candidate at the grid's corner is clipped rather than lost.
    @Test func theCandidateMapPaintsEachCandidateAsABallInThePatient() {
        let u = Vector3(0.96, 0.28, 0).normalized, v = Vector3(-0.28, 0.96, 0.1).normalized
        let grid = Geometry(origin: Vector3(-20, 13, 40), spacing: Vector3(0.7, 1.1, 1.6), columnDirection: u, rowDirection: v,
                            sliceDirection: u.cross(v).normalized)
        let shape = [9, 14, 17]
        let peaks = [HeatmapPeak(voxel: [8, 7, 4], probability: 0.3), HeatmapPeak(voxel: [10, 8, 5], probability: 0.8),
                     HeatmapPeak(voxel: [0, 0, 0], probability: 0.55), HeatmapPeak(voxel: [16, 13, 8], probability: 1.5),
                     HeatmapPeak(voxel: [3, 3, 3], probability: .nan)]
        let map = Evidence.candidateMap(peaks, shape: shape, grid: grid)
        var painted = [Float: Int]()
        for k in 0..<9 { for j in 0..<14 { for i in 0..<17 {
            let here = grid.patient(i: Double(i), j: Double(j), k: Double(k))
            let near = peaks.filter { p in
                p.probability.isFinite && (grid.patient(i: Double(p.voxel[0]), j: Double(p.voxel[1]), k: Double(p.voxel[2])) - here).length <= 3 + 1e-9
            }
            let expected = near.map { Float(min(1, $0.probability)) }.max() ?? 0
            #expect(map[(k * 14 + j) * 17 + i] == expected, "voxel (\(i), \(j), \(k))")
            painted[expected, default: 0] += 1
        } } }
        // 0.3's ball loses the voxels it shares with 0.8's; the corners keep their clipped balls; NaN paints nothing.
        #expect(painted[0.3, default: 0] > 0 && painted[0.8, default: 0] > painted[0.3, default: 0] && painted[0.55, default: 0] > 1 && painted[1, default: 0] > 1)
        #expect(Set(painted.keys) == [0, 0.3, 0.8, 0.55, 1])
    }

    /// candidates.json's artery probabilities: by column name as the head gave them, and left out, not written
    /// as NaN, where the head's output is not finite or not one per artery, so the file is still written.
    @Test func candidatesListEveryArteryOnlyWhereTheHeadSaysSomething() throws {
        let grid = Geometry(origin: Vector3(0, 0, 0), spacing: Vector3(1, 1, 1), columnDirection: Vector3(1, 0, 0),
                            rowDirection: Vector3(0, 1, 0), sliceDirection: Vector3(0, 0, 1))
        let named: [Double] = LocationLabel.locations.map { Double($0.rawValue + 1) / 91 }  // 1/91 … 13/91: sums to 1
        var broken = named
        broken[4] = .nan
        let peaks = [HeatmapPeak(voxel: [1, 2, 3], probability: 0.7, source: .dotFilter, locations: named),
                     HeatmapPeak(voxel: [2, 2, 2], probability: 0.4, source: .dotFilter, locations: broken),
                     HeatmapPeak(voxel: [3, 2, 1], probability: 0.2, source: .dotFilter, locations: Array(named.prefix(12))),
                     HeatmapPeak(voxel: [0, 0, 0], probability: 0.1)]
        let listed = Evidence.candidates(peaks, grid: grid)
        let decoded = try JSONDecoder().decode([Evidence.Candidate].self, from: try JSONEncoder().encode(listed))
        #expect(decoded == listed)
        let first = try #require(decoded[0].locations)
        let byName: [String: Double] = Dictionary(uniqueKeysWithValues: LocationLabel.locations.map { ($0.columnName, named[$0.rawValue]) })
        #expect(first == byName)
        #expect(decoded[0].location == LocationLabel.otherPosteriorCirculation.columnName && decoded[0].locationProbability == 13.0 / 91)
        #expect(decoded[1...].allSatisfy { $0.locations == nil && $0.location == nil && $0.locationProbability == nil })
    }

    /// With no detector, the dot filter's candidates are the only ones: training labels and cuts them as it
    /// does a detector's peaks, each at heatmap value 0, and writes with the weights the preparation and a
    /// location prior fitted to the localizer points of the series it trained on (not the held-out ones)
    /// and of the positive folder. Weights alone then make a predictor that scores the same candidates,
    /// names them by that prior (reading each cube's eight flips when asked) and lists them in a results
    /// folder, with their candidate map in the heatmap's place; what cannot work is refused.
    @Test func aSecondStageWithNoDetectorStandsAlone() throws {
        let root = try temporaryDirectory()
        var options = SynthOptions(count: 6, size: .small, seed: 44)
        options.positiveFraction = 0.7
        _ = try SynthDataset.generate(options, into: "\(root)/data")
        try positiveSeries(seed: 45, into: "\(root)/points")
        try positiveSeries(seed: 47, into: "\(root)/more")
        var preparation = Preparation(mode: .improved, shape: [16, 32, 32])
        preparation.spacing = 4.8
        var training = CandidateClassifierTraining(dataRoot: "\(root)/data", preparation: preparation, output: "\(root)/stage2")
        shrink(&training)
        training.positiveRoots = ["\(root)/points"]
        training.furtherDataRoots = ["\(root)/more"]
        #expect(throws: TorchError.self, "no candidates without the dot filter") { try training.run() }
        // Read at each scale (the other test reads them across the scales). On these small series the two
        // readings put their five strongest on the same grid voxels; DotFilterTests tells them apart.
        let dotFilter = DotFilterCandidates(count: 5, depthMM: 8, separationMM: 10, peakSearch: .eachScale)
        training.dotFilter = dotFilter
        let report = try training.run()
        #expect(report.trainingExamples.positive > 0 && report.trainingExamples.negative > 0 && report.heldOutHeatmapAUC == nil)

        // The examples: the filter's candidates, those near a stronger one left out, labelled by the points.
        let cache = PreprocessedCache(root: "\(root)/data/.willis-cache", preparation: preparation)
        let uids = try RSNATables.readLabels("\(root)/data/train.csv").map(\.seriesInstanceUID).sorted()
        func distanceMM(_ a: [Int], _ b: [Int]) -> Double {
            (0..<3).map { Double(a[$0] - b[$0]) * 4.8 }.map { $0 * $0 }.reduce(0, +).squareRoot()
        }
        func kept(_ uid: String) throws -> [[Int]] {
            var out: [[Int]] = []
            for p in try dotFilterPoints(uid, folder: "\(root)/data/series", cache: cache, count: 5, depthMM: 8, peakSearch: .eachScale)
            where !out.contains(where: { distanceMM(p, $0) <= 10 }) { out.append(p) }
            return out
        }
        var candidates = 0
        for uid in uids.prefix(2) {
            let input = try cache.load(uid)
            let targets = try cache.detectionTargets(uid).points
            let expected = try kept(uid)
            let mine = try training.examples([uid], cache: cache, predictor: nil, seriesRoot: "\(root)/data/series").filter(\.isPeak)
            #expect(mine.count == expected.count && mine.allSatisfy { $0.source == .dotFilter && $0.heatmap == 0 })
            for (example, v) in zip(mine, expected) {
                #expect(example.cube == CandidateClassifier.cube(input, shape: [16, 32, 32], centre: v.map(Double.init), size: 8 + 2 * training.jitter))
                let near = targets.contains { t in
                    ([t.i, t.j, t.k].enumerated().map { ($0.element - Double(v[$0.offset])) * 4.8 }.map { $0 * $0 }.reduce(0, +)).squareRoot() <= 10
                }
                #expect(example.positive == near)
            }
            candidates += mine.count
            #expect(FileManager.default.fileExists(atPath: "\(cache.folder)/dots-r\(DotFilter.revision)-5-8.0-eachScale/\(uid).json"), "kept apart")
        }
        #expect(candidates > 0, "the filter finds candidates")

        // The weights carry the preparation and the prior of the points of the training series, the positive
        // folder and the further training folder.
        let weights = "\(root)/stage2/candidate-classifier.safetensors"
        let file = try SafeTensorsFile(path: weights)
        let settings = try JSONDecoder().decode(CandidateClassifierSettings.self,
                                                from: Data(try #require(file.metadata[CandidateClassifierSettings.metadataKey]).utf8))
        #expect(settings.standsAlone == true && settings.dotFilter == dotFilter)
        #expect(try Preparation.from(json: try #require(file.metadata[Preparation.metadataKey])) == preparation)
        let prior = try LocationPrior.from(json: try #require(file.metadata[LocationPrior.metadataKey]))
        let pointsCache = PreprocessedCache(root: "\(root)/points/.willis-cache", preparation: preparation)
        let pointsUIDs = try RSNATables.readLabels("\(root)/points/train.csv").map(\.seriesInstanceUID)
        let moreCache = PreprocessedCache(root: "\(root)/more/.willis-cache", preparation: preparation)
        let moreUIDs = try RSNATables.readLabels("\(root)/more/train.csv").map(\.seriesInstanceUID)
        var perLocation: [LocationLabel: Int] = [:]
        // Every tenth series of the first training folder (in UID order) is held out to score the
        // classifier: the first; none of the further folder's.
        for (c, uid) in uids.dropFirst().map({ (cache, $0) }) + pointsUIDs.map({ (pointsCache, $0) }) + moreUIDs.map({ (moreCache, $0) }) {
            for t in try c.detectionTargets(uid).points { perLocation[t.location, default: 0] += 1 }
        }
        #expect(prior.components.map { perLocation[$0.location] ?? 0 } == prior.components.map(\.count))
        #expect(prior.components.map(\.count).reduce(0, +) > 0)

        // Prediction from the weights alone.
        let predictor = try Predictor(candidateClassifiers: [weights], calibrated: false)
        #expect(predictor.networks.isEmpty && predictor.preparation == preparation && predictor.locationPrior == prior)
        let stage = try #require(predictor.candidateStage)
        #expect(stage.standsAlone && stage.scoring == .classifier && predictor.candidateCount == 5)
        guard case let .candidates(readout) = predictor.readout else { Issue.record("no candidate readout"); return }
        guard let uid = uids.first(where: { !((try? kept($0)) ?? []).isEmpty }) else { Issue.record("no series with candidates"); return }
        let series = try SeriesLoader().load("\(root)/data/series/\(uid)")
        let (input, record) = predictor.prepareWithRecord(series)
        let dots = predictor.dotCandidates(series, record: record)
        #expect(dots == [try #require(stage.settings.dotFilter): try dotFilterPoints(uid, folder: "\(root)/data/series", cache: cache, count: 5, depthMM: 8, peakSearch: .eachScale)])
        let result = try predictor.infer(input, heatmap: true, dotCandidates: dots)
        #expect(result.heatmap == nil, "no detector, no heatmap")
        let peaks = try #require(result.peaks)
        let expected = try kept(uid)
        #expect(Set(peaks.map(\.voxel)) == Set(expected) && peaks.count == expected.count && peaks.allSatisfy { $0.source == .dotFilter })
        for peak in peaks {
            let x = try Tensor(CandidateClassifier.cube(input, shape: [16, 32, 32], centre: peak.voxel.map(Double.init), size: 8), shape: [1, 1, 8, 8, 8])
            let q = try Torch.withNoGrad { (try stage.members[0].classifier(x).sigmoid().item() + stage.members[0].classifier(x.flip([4])).sigmoid().item()) / 2 }
            #expect(abs(try #require(peak.classifier) - q) < 1e-6 && peak.probability == peak.classifier)
        }
        #expect(result.probabilities == readout.probabilities(peaks, grid: preparation.cropGrid))
        // Reading all eight flips of each cube: the same candidates, each scored by the mean of its eight views.
        predictor.candidateStage?.flips = .all
        let flipped = try #require(try predictor.infer(input, heatmap: true, dotCandidates: dots).peaks)
        #expect(Set(flipped.map(\.voxel)) == Set(peaks.map(\.voxel)) && flipped.count == peaks.count)
        for peak in flipped {
            let x = try Tensor(CandidateClassifier.cube(input, shape: [16, 32, 32], centre: peak.voxel.map(Double.init), size: 8), shape: [1, 1, 8, 8, 8])
            let q = try Torch.withNoGrad {
                try [[], [2], [3], [2, 3], [4], [2, 4], [3, 4], [2, 3, 4]].map { try stage.members[0].classifier($0.isEmpty ? x : x.flip($0)).sigmoid().item() }.reduce(0, +) / 8
            }
            #expect(abs(try #require(peak.classifier) - q) < 1e-6)
        }
        predictor.candidateStage?.flips = .mirror
        #expect(try predictor.predict(series).probabilities == result.probabilities)
        #expect(try predictor.predict(series).warnings.isEmpty)
        // No vessels in view: no candidate, a prediction of nothing, and a warning that says why.
        var empty = series
        empty.volume.voxels = [Float](repeating: -1000, count: empty.volume.voxels.count)
        let nothing = try predictor.predict(empty)
        #expect(nothing.probabilities == [Double](repeating: 0, count: 14))
        #expect(nothing.warnings.contains { $0.contains("the dot filter found no candidate") }, "\(nothing.warnings)")

        // A results folder lists the candidates without a heatmap.
        var pipeline = BatchPrediction(workers: 1, queueDepth: 1)
        let results = ResultsFolder("\(root)/results")
        pipeline.results = results
        pipeline.run(["\(root)/data/series/\(uid)"], predictor: predictor, loader: SeriesLoader()) { _, outcome in
            #expect(outcome.error == nil && outcome.probabilities == result.probabilities && outcome.warnings.isEmpty, "\(outcome.error ?? "")")
        }
        let recorded = try #require(results.result(uid))
        #expect(recorded.candidates?.map(\.voxel) == peaks.map(\.voxel))
        #expect(recorded.files.contains(Evidence.candidatesFile) && !recorded.files.contains(Evidence.heatmapFile))
        // In the heatmap's place, the candidates' probabilities as balls, on the prepared grid in patient
        // geometry: each voxel against the strongest candidate within 3 mm of it in the patient.
        #expect(recorded.files.contains(Evidence.candidateMapFile))
        let grid = try #require(record).output
        let map = try NIfTI.read("\(results.folder(for: uid))/\(Evidence.candidateMapFile)")
        #expect(map.volume.shape.depth == 16 && map.volume.rows == 32 && map.volume.columns == 32)
        for (i, j, k) in [(0.0, 0.0, 0.0), (31.0, 0.0, 15.0), (12.5, 30.0, 7.0)] {
            #expect((map.volume.geometry.patient(i: i, j: j, k: k) - grid.patient(i: i, j: j, k: k)).length < 1e-3)
        }
        let places = peaks.map { grid.patient(i: Double($0.voxel[0]), j: Double($0.voxel[1]), k: Double($0.voxel[2])) }
        var painted = 0
        for k in 0..<16 { for j in 0..<32 { for i in 0..<32 {
            let here = grid.patient(i: Double(i), j: Double(j), k: Double(k))
            let expected = zip(peaks, places).filter { ($0.1 - here).length <= Evidence.candidateRadiusMM + 1e-9 }.map { Float($0.0.probability) }.max() ?? 0
            if map.volume[k, j, i] != expected { Issue.record("voxel (\(i), \(j), \(k)): \(map.volume[k, j, i]) vs \(expected)") }
            if expected > 0 { painted += 1 }
        } } }
        #expect(painted >= peaks.count, "every candidate paints at least its own voxel")
        // The MIPs show the map in red: colour PNGs (IHDR colour type 2).
        let axial = try Data(contentsOf: URL(fileURLWithPath: "\(results.folder(for: uid))/axial.png"))
        #expect(axial.count > 25 && axial[25] == 2)

        // Refused: a heatmap's rule with no heatmap, the stage beside a detector, a detector's stage alone.
        #expect(throws: TorchError.self) { try Predictor(candidateClassifiers: [weights], scoring: .geometricMean) }
        let detector = try detectorWithPrior(seed: 46, in: "\(root)/other")
        #expect(throws: TorchError.self) { try Predictor(weights: detector).useCandidateClassifier(at: weights, scoring: .classifier) }
        try self.training("\(root)/other", detector: detector).run()
        #expect(throws: TorchError.self) { try Predictor(candidateClassifiers: ["\(root)/other/stage2/candidate-classifier.safetensors"]) }
    }

    /// k-fold cross-validation: a held-out fold of the training folder takes the place of every tenth
    /// series. Its series give none of the training candidates and none of the location prior's points,
    /// their candidates are the scored ones, and the fold is listed beside the weights for willis predict
    /// --series-list; a later run that holds no fold out removes the list.
    @Test func aHeldOutFoldIsLeftOutOfTrainingAndScoredOn() throws {
        let root = try temporaryDirectory()
        var training = try standAloneTraining(sixSeries(seed: 52), in: root)
        let preparation = standAlonePreparation
        let fold = try HeldOutFold(index: 1, of: 3)
        training.heldOutFold = fold
        var lines: [String] = []
        training.log = { lines.append($0) }
        let report = try training.run()

        let labels = try RSNATables.readLabels("\(root)/data/train.csv")
        let held = fold.members(of: labels)
        #expect(held.count == 2)
        let list = try String(contentsOfFile: "\(root)/stage2/\(CandidateClassifierTraining.heldOutListFileName)", encoding: .utf8)
        #expect(list == held.sorted().map { $0 + "\n" }.joined())
        let cache = PreprocessedCache(root: "\(root)/data/.willis-cache", preparation: preparation)
        let trainedUIDs = labels.map(\.seriesInstanceUID).filter { !held.contains($0) }.sorted()
        let trained = try training.examples(trainedUIDs, cache: cache, predictor: nil, seriesRoot: "\(root)/data/series")
        let scored = try training.examples(held.sorted(), cache: cache, predictor: nil, seriesRoot: "\(root)/data/series").filter(\.isPeak)
        #expect(report.trainingExamples.positive == trained.filter(\.positive).count
            && report.trainingExamples.negative == trained.filter { !$0.positive }.count)
        #expect(report.heldOutPeaks.positive == scored.filter(\.positive).count
            && report.heldOutPeaks.negative == scored.filter { !$0.positive }.count && !scored.isEmpty)
        // The prior holds the points of the other folds' series alone.
        let file = try SafeTensorsFile(path: "\(root)/stage2/candidate-classifier.safetensors")
        let prior = try LocationPrior.from(json: try #require(file.metadata[LocationPrior.metadataKey]))
        var perLocation: [LocationLabel: Int] = [:]
        for uid in trainedUIDs { for t in try cache.detectionTargets(uid).points { perLocation[t.location, default: 0] += 1 } }
        #expect(prior.components.map { perLocation[$0.location] ?? 0 } == prior.components.map(\.count))
        #expect(lines.contains { $0.contains("in the 2 prepared series of fold 1 of 3") }, "\(lines)")

        // A fold that leaves nothing to score (more folds than series) is refused before training.
        training.heldOutFold = try HeldOutFold(index: 6, of: 7)
        #expect(throws: DatasetError.self) { try training.run() }
        training.heldOutFold = nil
        _ = try training.run()
        #expect(!FileManager.default.fileExists(atPath: "\(root)/stage2/\(CandidateClassifierTraining.heldOutListFileName)"),
                "an earlier fold's list does not outlive it")
    }

    /// With a time limit, the steps stop where the plan made from the measured step time says (on a
    /// clock the test moves by one second a step, so the plan is known), the log says so, and the weights
    /// are still scored and written; a generous limit runs the recipe's steps, and a limit the preparation
    /// has already spent is refused before any step, writing no weights.
    @Test func aTimeLimitStopsTheStepsWhereThePlanSays() throws {
        let root = try temporaryDirectory()
        var training = try standAloneTraining(sixSeries(seed: 53), in: root)
        training.steps = 1000
        training.timeLimit = 160
        var clock = Date(timeIntervalSince1970: 0)
        training.now = { clock }
        training.progress = { stage, _, _ in if stage == "training" { clock += 1 } }
        var lines: [String] = []
        training.log = { lines.append($0) }
        let report = try training.run()
        // At the first plan, 120 steps done in 120 s, each timed step 1 s; the scoring's reserve is kept.
        let scored = report.heldOutPeaks.positive + report.heldOutPeaks.negative
        let reserve = StepBudget.scoringReserve(candidates: scored, readings: 1, secondsPerStep: 1, batchSize: training.batchSize)
        let expected = 120 + Int((160 - 120 - reserve).rounded(.down))
        #expect(scored > 0 && expected < 220, "the plan is made once, at step 120")
        #expect(report.stepsRun == expected)
        #expect(lines.contains { $0.contains("\(expected) of 1000 steps fit") }, "\(lines)")
        #expect(lines.contains { $0.contains("stopped after \(expected) of 1000 steps") }, "\(lines)")
        #expect(FileManager.default.fileExists(atPath: "\(root)/stage2/candidate-classifier.safetensors"))

        training.steps = 130
        training.timeLimit = 1e6
        #expect(try training.run().stepsRun == 130)

        try FileManager.default.removeItem(atPath: "\(root)/stage2")
        training.timeLimit = 1e-3
        training.progress = { _, _, _ in }
        training.now = { clock += 1; return clock }
        #expect(throws: TimeLimitSpent.self) { try training.run() }
        #expect(!FileManager.default.fileExists(atPath: "\(root)/stage2/candidate-classifier.safetensors"))
    }

    /// A run paused after its third step writes its checkpoint and no weights; resumed, it ends with the
    /// weights of the same run never stopped, bit for bit (the moving average's and the last step's), and
    /// removes the checkpoint. A run without `resume` does not overwrite a checkpoint, a checkpoint of other
    /// settings is refused, naming them, and `resume` with no checkpoint starts from the first step.
    @Test func aPausedRunResumesToTheWeightsOfARunNeverStopped() throws {
        let root = try temporaryDirectory()
        var training = try standAloneTraining(sixSeries(seed: 59), in: root)
        training.steps = 7
        training.averageDecay = 0.9
        training.output = "\(root)/straight"
        try training.run()
        func weights(_ folder: String) throws -> [[Float]] {
            try [CandidateClassifierTraining.lastStepFileName, "candidate-classifier.safetensors"].map { name in
                let file = try SafeTensorsFile(path: "\(folder)/\(name)")
                return try file.names.sorted().flatMap { try file.tensor($0).floats() }
            }
        }
        // A clock of one second a step: the pause comes after step 3.
        var done = 0
        training.now = { Date(timeIntervalSince1970: Double(done)) }
        training.progress = { stage, step, _ in if stage == "training" { done = step } }
        func paused(into folder: String) throws {
            done = 0
            training.output = folder
            training.pauseAfter = 3
            training.resume = false
            do {
                try training.run()
                Issue.record("the run did not pause")
            } catch let pause as TrainingPaused {
                #expect(pause.step == 3 && pause.planned == 7 && pause.description.contains("--resume"), "\(pause)")
            }
            #expect(FileManager.default.fileExists(atPath: "\(folder)/\(CandidateClassifierTraining.checkpointFileName)"))
            #expect(!FileManager.default.fileExists(atPath: "\(folder)/candidate-classifier.safetensors"), "a paused run writes no weights")
        }
        try paused(into: "\(root)/paused")
        training.pauseAfter = nil
        training.resume = true
        var lines: [String] = []
        training.log = { lines.append($0) }
        #expect(try training.run().stepsRun == 7)
        #expect(lines.contains { $0.hasPrefix("resumed from \(root)/paused/\(CandidateClassifierTraining.checkpointFileName) after step 3") }, "\(lines)")
        let (straight, resumed) = (try weights("\(root)/straight"), try weights("\(root)/paused"))
        // Compared as one Bool each: a failure would print thousands of weights otherwise.
        let (lastSame, averageSame, averageMoved) = (straight[0] == resumed[0], straight[1] == resumed[1], straight[0] != straight[1])
        #expect(lastSame, "the last step's weights")
        #expect(averageSame, "the moving average's")
        #expect(averageMoved)
        #expect(!FileManager.default.fileExists(atPath: "\(root)/paused/\(CandidateClassifierTraining.checkpointFileName)"), "the checkpoint is removed with the weights written")

        try paused(into: "\(root)/other")
        training.pauseAfter = nil
        do {
            try training.run()
            Issue.record("a run without resume overwrote a checkpoint")
        } catch {
            #expect("\(error)".contains("add --resume to go on from it"), "\(error)")
        }
        training.resume = true
        training.learningRate *= 2
        do {
            try training.run()
            Issue.record("a checkpoint of another learning rate was resumed")
        } catch {
            #expect("\(error)".contains("other settings or candidates") && "\(error)".contains("recipe: batch"), "\(error)")
        }
        training.learningRate /= 2
        training.output = "\(root)/fresh"
        lines = []
        try training.run()
        #expect(lines.contains { $0.hasPrefix("no checkpoint in \(root)/fresh: starting from the first step") }, "\(lines)")
        let freshSame = try weights("\(root)/fresh") == straight
        #expect(freshSame, "with no checkpoint, the run from the first step")
    }

    /// With the location head, every candidate the training series' vessel labels reach is named: an
    /// aneurysm candidate by the nearest localizer point's location, any other by the label of the nearest
    /// labelled voxel within the radius (found here by brute force over the cached labels). Prediction
    /// names the candidates by the head, not the prior: each peak's 13 probabilities are the head's read of
    /// its cube and of the mirror at the mirrored place, the 14 probabilities the readout of them, and the
    /// results folder lists each candidate's most probable artery.
    @Test func aLocationHeadNamesTheArteryUnderEachCandidate() throws {
        let root = try temporaryDirectory()
        var options = sixSeries(seed: 47)
        options.segmentationFraction = 1
        var training = try standAloneTraining(options, in: root)
        let preparation = standAlonePreparation
        training.locationHead = true
        training.locationRadiusMM = 10
        training.permuteAxes = true
        #expect(throws: TorchError.self, "permuted axes scramble what the head reads") { try training.run() }
        training.permuteAxes = false
        var logged: [String] = []
        training.log = { logged.append($0) }
        let report = try training.run()
        let naming = try #require(report.naming)
        #expect(naming.named > 0 && naming.priorOnAll != nil)

        let cache = PreprocessedCache(root: "\(root)/data/.willis-cache", preparation: preparation)
        let uids = try RSNATables.readLabels("\(root)/data/train.csv").map(\.seriesInstanceUID).sorted()
        let grid = preparation.cropGrid, shape = preparation.shape
        var byVessel = 0, byPoint = 0, unnamed = 0
        for uid in uids {
            let (targets, vessels) = try cache.targets(uid)
            let labels = try #require(vessels, "every series has a _cowseg file")
            let labelled = labels.indices.filter { labels[$0] != 0 }
            for example in try training.examples([uid], cache: cache, predictor: nil, seriesRoot: "\(root)/data/series") {
                let v = [(example.position[0] / 4.8 + Double(shape[2] - 1) / 2), (example.position[1] / 4.8 + Double(shape[1] - 1) / 2),
                         (example.position[2] / 4.8 + Double(shape[0] - 1) / 2)]
                #expect(grid.position(i: v[0], j: v[1], k: v[2]) == example.position)
                let expected: LocationLabel?
                if example.positive {
                    let nearest = targets.points.min { a, b in
                        zip([a.i, a.j, a.k], v).map { ($0 - $1) * ($0 - $1) }.reduce(0, +) < zip([b.i, b.j, b.k], v).map { ($0 - $1) * ($0 - $1) }.reduce(0, +)
                    }
                    expected = nearest.map(\.location)
                    byPoint += 1
                } else {
                    var best: (d2: Double, label: UInt8)?
                    for at in labelled {
                        let (k, j, i) = (at / (shape[1] * shape[2]), (at / shape[2]) % shape[1], at % shape[2])
                        let d2 = (Double(i) - v[0]) * (Double(i) - v[0]) + (Double(j) - v[1]) * (Double(j) - v[1]) + (Double(k) - v[2]) * (Double(k) - v[2])
                        if d2 * 4.8 * 4.8 <= 10 * 10 + 1e-9, d2 < (best?.d2 ?? .infinity) { best = (d2, labels[at]) }
                    }
                    expected = best.flatMap { LocationLabel(rawValue: Int($0.label) - 1) }
                    if expected != nil { byVessel += 1 } else { unnamed += 1 }
                }
                #expect(example.location == expected, "\(uid) \(v) positive \(example.positive)")
            }
        }
        #expect(byPoint > 0 && byVessel > 0, "aneurysms and vessel candidates are both named")
        let warned = { (lines: [String]) in lines.contains { $0.hasPrefix("warning: the location head learns the arteries mostly from the aneurysms") } }
        #expect(byVessel > unnamed && !warned(logged), "most false candidates are named: no warning (\(byVessel) named, \(unnamed) not; \(logged.filter { $0.hasPrefix("location head") }))")
        // The same series with no vessel labels: only the aneurysms are named, and training says so.
        var unlabelledOptions = options
        unlabelledOptions.segmentationFraction = 0
        _ = try SynthDataset.generate(unlabelledOptions, into: "\(root)/unlabelled")
        var unlabelled = training
        (unlabelled.dataRoot, unlabelled.output) = ("\(root)/unlabelled", "\(root)/unlabelled-stage2")
        logged = []
        _ = try unlabelled.run()
        #expect(warned(logged) && logged.contains { $0.hasPrefix("location head: ") && $0.contains(", 0 others by a vessel label") }, "\(logged)")

        // Prediction names the candidates by the head.
        let weights = "\(root)/stage2/candidate-classifier.safetensors"
        let predictor = try Predictor(candidateClassifiers: [weights], calibrated: false)
        let member = try #require(predictor.candidateStage).members[0]
        #expect(member.settings.namesLocations == true && member.classifier.namesLocations)
        guard case let .candidates(readout) = predictor.readout else { Issue.record("no candidate readout"); return }
        var compared = 0
        for uid in uids {
            let series = try SeriesLoader().load("\(root)/data/series/\(uid)")
            let (input, record) = predictor.prepareWithRecord(series)
            let result = try predictor.infer(input, heatmap: false, dotCandidates: predictor.dotCandidates(series, record: record))
            let peaks = try #require(result.peaks)
            guard !peaks.isEmpty else { continue }
            for peak in peaks {
                let position = grid.position(i: Double(peak.voxel[0]), j: Double(peak.voxel[1]), k: Double(peak.voxel[2]))
                let x = try Tensor(CandidateClassifier.cube(input, shape: shape, centre: peak.voxel.map(Double.init), size: 8), shape: [1, 1, 8, 8, 8])
                let direct = try Torch.withNoGrad { try member.classifier.outputs(x, positions: Tensor(position.map(Float.init), shape: [1, 3])).locations?.floats() }
                let mirror = try Torch.withNoGrad {
                    try member.classifier.outputs(x.flip([4]), positions: Tensor([Float(-position[0]), Float(position[1]), Float(position[2])], shape: [1, 3])).locations?.floats()
                }
                func softmax(_ z: [Float]) -> [Double] {
                    let top = z.max() ?? 0, e = z.map { Foundation.exp(Double($0 - top)) }, sum = e.reduce(0, +)
                    return e.map { $0 / sum }
                }
                let (a, b) = (softmax(try #require(direct)), softmax(try #require(mirror)))
                let expected = LocationLabel.locations.map { (a[$0.rawValue] + b[$0.mirrored.rawValue]) / 2 }
                let named = try #require(peak.locations)
                #expect(zip(named, expected).allSatisfy { abs($0 - $1) < 1e-5 })
            }
            #expect(result.probabilities == readout.probabilities(peaks, grid: grid))
            let byPrior = readout.probabilities(peaks.map { var p = $0; p.locations = nil; return p }, grid: grid)
            #expect(byPrior != result.probabilities, "the head, not the prior, names them")
            #expect(byPrior[13] == result.probabilities[13], "Aneurysm Present does not depend on the naming")

            var pipeline = BatchPrediction(workers: 1, queueDepth: 1)
            let results = ResultsFolder("\(root)/results-\(uid)")
            pipeline.results = results
            pipeline.run(["\(root)/data/series/\(uid)"], predictor: predictor, loader: SeriesLoader()) { _, outcome in
                #expect(outcome.error == nil && outcome.probabilities == result.probabilities, "\(outcome.error ?? "")")
            }
            let recorded = try #require(results.result(uid)?.candidates)
            #expect(recorded.map(\.location) == peaks.map { p in
                let named = p.locations ?? []
                return named.indices.max { named[$0] < named[$1] }.map { LocationLabel.locations[$0].columnName }
            })
            // Every artery's probability is recorded, so the row can be recomputed from candidates.json alone.
            #expect(recorded.map(\.locations) == peaks.map { p in
                p.locations.map { Dictionary(uniqueKeysWithValues: zip(LocationLabel.locations.map(\.columnName), $0)) }
            })
            var absent = [Double](repeating: 1, count: LocationLabel.locations.count), none = 1.0
            for c in recorded.prefix(readout.count) {
                let named = try #require(c.locations)
                for (l, location) in LocationLabel.locations.enumerated() { absent[l] *= 1 - c.probability * (named[location.columnName] ?? .nan) }
                none *= 1 - c.probability
            }
            let recomputed = absent.map { 1 - $0 } + [1 - none]
            #expect(zip(recomputed, result.probabilities).allSatisfy { abs($0 - $1) < 1e-12 }, "\(recomputed) against \(result.probabilities)")
            compared += 1
            break
        }
        #expect(compared == 1, "a series with candidates was predicted")
    }

    /// The second stage is refused where it cannot work: without the candidate readout, with weights that
    /// are not a candidate classifier's, or with one trained on images prepared otherwise.
    @Test func mismatchedSecondStagesAreRefused() throws {
        let root = try temporaryDirectory()
        let detector = try detectorWithPrior(seed: 32, in: root)
        try training(root, detector: detector).run()
        let weights = "\(root)/stage2/candidate-classifier.safetensors"
        let pooled = try Predictor(weights: detector)
        pooled.readout = .pooled
        #expect(throws: TorchError.self) { try pooled.useCandidateClassifier(at: weights, scoring: .classifier) }
        #expect(throws: TorchError.self) { try Predictor(weights: detector).useCandidateClassifier(at: detector, scoring: .classifier) }
        let file = try SafeTensorsFile(path: weights)
        var metadata = file.metadata
        var settings = try JSONDecoder().decode(CandidateClassifierSettings.self, from: Data(try #require(metadata[CandidateClassifierSettings.metadataKey]).utf8))
        settings.preparation = "improved-16x32x32-1.0mm"
        metadata[CandidateClassifierSettings.metadataKey] = String(decoding: try JSONEncoder().encode(settings), as: UTF8.self)
        try SafeTensors.write(try file.names.filter { !$0.hasPrefix("__") }.map { ($0, try file.tensor($0)) }, metadata: metadata,
                              to: "\(root)/other.safetensors")
        #expect(throws: TorchError.self) { try Predictor(weights: detector).useCandidateClassifier(at: "\(root)/other.safetensors", scoring: .classifier) }
        // A detector without a location prior has no candidate readout to re-score.
        try Detector(baseFilters: 4).store.save(to: "\(root)/plain.safetensors",
                                                metadata: ["willis_model": "detector", Preparation.metadataKey: try Predictor(weights: detector).preparation.json])
        #expect(throws: TorchError.self) { try Predictor(weights: "\(root)/plain.safetensors").useCandidateClassifier(at: weights, scoring: .classifier) }
    }
}
