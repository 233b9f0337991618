import ArgumentParser
import Dataset
import Foundation
import Models
import Preprocessing
import Torch
import Training

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train the reference UNet3D on an RSNA-layout folder (series/, train.csv).",
        discussion: """
            Defaults equal the reference notebook: UNet3D base 16, sigmoid + BCELoss, Adam 1e-3, \
            ReduceLROnPlateau (patience 3, factor 0.5) on the validation loss, batch 2, 20 epochs, inputs \
            clipped to [-1000, 1000] HU, scaled to [0, 1] and resized to 64×128×128 as scikit-image does. \
            Inputs are cached on disk; one stratified fold validates with the competition metric each epoch. \
            Writes OUT/metrics.jsonl, OUT/last.safetensors (resumable), OUT/best-model.safetensors and \
            OUT/model.safetensors (PyTorch state_dict names).
            """)

    @OptionGroup var engineOptions: EngineOptions

    @Option(help: "RSNA-layout folder (train.csv, series/).")
    var data: String

    @Option(help: "Output folder for checkpoints and logs.")
    var out: String = "runs/reference"

    @Option(help: "TOML experiment file (see ExperimentFile); flags given here override it.") var config: String?
    @Option(help: "Epochs (default 20).") var epochs: Int?
    @Option(help: "Validate after every N epochs and after the last (default 1: every epoch).") var validateEvery: Int?
    @Option(help: "Batch size (default 2).") var batchSize: Int?
    @Option(help: "Learning rate (default 1e-3).") var learningRate: Double?
    @Option(help: "UNet3D base filters (default 16).") var baseFilters: Int?
    @Option(help: "Input size DxHxW (default 64x128x128).") var inputShape: String?
    @Option(help: "reference (the notebook's whole-volume resize, default) or improved (canonical orientation, fixed spacing, head crop, modality-aware intensities).")
    var preprocessing: String?
    @Option(help: "Improved mode: output spacing in mm (default 1.2).") var spacing: Double?
    @Option(help: "reference (the notebook's UNet3D, default) or detector (heatmap + vessel heads, location pooling; needs --preprocessing improved).")
    var model: String?
    @Option(help: "reference (sigmoid + BCELoss, default) or logits (BCEWithLogitsLoss).") var loss: String?
    @Option(help: "Detector: train on random patches DxHxW of the input (validation and prediction run over the whole input in sliding windows of the patch).") var patchShape: String?
    @Option(help: "Detector with patches: share of patches placed around an aneurysm (default 0.5).") var positiveFraction: Double?
    @Option(help: "How each epoch draws its series: uniform (each once, shuffled; the default), balanced (with replacement, every modality and, within it, every aneurysm location equally often) or weighted (with replacement, by --series-weights).") var sampling: String?
    @Option(help: ArgumentHelp("Draw each epoch's series with replacement in proportion to these weights (CSV: SeriesInstanceUID,weight; a series not listed weighs 1); implies --sampling weighted.",
                               valueName: "weights.csv")) var seriesWeights: String?
    @Option(help: "Detector: fp32, or bf16 (mixed precision: CUDA, or CPUs with AVX-512 BF16 or AMX; other CPUs run fp32 and say so).") var precision: TrainingConfig.Precision?
    @Flag(help: "Random left-right flips with Left/Right label swap.") var flip = false
    @Option(help: "Random in-plane rotation up to ± this many degrees.") var rotate: Double?
    @Option(help: "Random in-plane scaling by up to ± this fraction.") var scale: Double?
    @Option(help: "Random intensity shift up to ± this (in input units).") var intensityShift: Float?
    @Option(help: "Random intensity gain up to ± this fraction.") var intensityGain: Float?
    @Option(help: "Gaussian noise of this standard deviation.") var noise: Float?
    @Option(help: "Folds for the validation split.") var folds: Int = 5
    @Option(help: "Validation fold.") var fold: Int = 0
    @Option(help: "Cache folder (default DATA/.willis-cache).") var cache: String?
    @Option(help: "Seed (default 0).") var seed: UInt64?
    @Flag(help: "Continue from OUT/last.safetensors.") var resume = false
    @Option(help: ArgumentHelp("Start from these weights instead of random ones (fine-tuning); a weight stored with one input channel is spread over a wider input's channels.",
                               valueName: "weights.safetensors")) var initWeights: String?
    @Flag(help: "Channels-last 3D weights and inputs (faster convolutions; same arithmetic, another summation order).") var channelsLast = false
    @Option(help: "cpu, cuda or cuda:N (data-parallel on CUDA: cuda means cuda:LOCAL_RANK).") var device: String = "cpu"
    @Option(help: "Data-parallel runs: seconds a collective waits for the other processes before failing.") var distTimeout: Double = 600
    @Option(help: "Stop after the first epoch whose training pass ends past this many minutes (the input cache's build not counted), validated and its weights written; the learning-rate schedule still spans --epochs.")
    var timeLimit: Double?
    @Flag(help: "CUDA: cuDNN times its convolution algorithms for each new shape and keeps the fastest (the first steps are slower; results differ by rounding).")
    var cudnnBenchmark = false

    func run() throws {
        _ = try engineOptions.load()
        setvbuf(stdout, nil, _IOLBF, 0)
        if let timeLimit, !(timeLimit > 0) { throw ValidationError("--time-limit must be a positive number of minutes") }
        if cudnnBenchmark { try Torch.setCudnnBenchmark(true) }
        var config = TrainingConfig()
        if let path = self.config {
            let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
            try applyExperimentFile(path) { try ExperimentFile.apply($0, to: &config, folder: folder) }
        }
        if let epochs { config.epochs = epochs }
        if let validateEvery {
            guard validateEvery >= 1 else { throw ValidationError("--validate-every must be 1 or more epochs") }
            config.validateEvery = validateEvery
        }
        if let batchSize { config.batchSize = batchSize }
        if let learningRate { config.learningRate = learningRate }
        if let baseFilters { config.baseFilters = baseFilters }
        if let inputShape { config.inputShape = try parseShape(inputShape) }
        if let preprocessing {
            guard let mode = Preparation.Mode(rawValue: preprocessing) else { throw ValidationError("--preprocessing must be reference or improved") }
            config.preparation.mode = mode
        }
        if let spacing { config.preparation.spacing = spacing }
        if let model {
            guard let m = TrainingConfig.Model(rawValue: model) else { throw ValidationError("--model must be reference or detector") }
            config.model = m
        }
        if config.model == .detector, let baseFilters { config.detector.baseFilters = baseFilters }
        if config.model == .detector && config.preparation.mode != .improved {
            throw ValidationError("the detector trains on improved-mode inputs: add --preprocessing improved")
        }
        do { try config.preparation.validate() } catch { throw ValidationError("\(error)") }
        switch loss {
        case nil: break
        case "reference": config.loss = .bceOnProbabilities
        case "logits": config.loss = .bceWithLogits
        default: throw ValidationError("--loss must be reference or logits")
        }
        if flip { config.flipLeftRight = true }
        if let rotate { config.augmentation.rotationDegrees = rotate }
        if let scale { config.augmentation.scale = scale }
        if let intensityShift { config.augmentation.intensityShift = intensityShift }
        if let intensityGain { config.augmentation.intensityGain = intensityGain }
        if let noise { config.augmentation.noise = noise }
        if let patchShape { config.detector.patchShape = try parseShape(patchShape) }
        if let precision { config.detector.precision = precision }
        if let positiveFraction {
            guard (0...1).contains(positiveFraction) else { throw ValidationError("--positive-fraction must be between 0 and 1") }
            config.detector.positiveFraction = positiveFraction
        }
        if let sampling {
            guard let s = SeriesSampling(rawValue: sampling) else { throw ValidationError("--sampling must be uniform, balanced or weighted") }
            config.sampling = s
        }
        if let seriesWeights {
            guard sampling == nil || config.sampling == .weighted else {
                throw ValidationError("--series-weights draws by weight: it cannot go with --sampling \(config.sampling.rawValue)")
            }
            do { config.seriesWeights = try SeriesWeights.read(seriesWeights) } catch let e as DatasetError { throw ValidationError("\(e)") }
            config.sampling = .weighted
        }
        guard config.sampling != .weighted || !config.seriesWeights.isEmpty else {
            throw ValidationError("weighted sampling needs --series-weights (or series_weights in the experiment file)")
        }
        if let seed { config.seed = seed }
        if channelsLast { config.channelsLast = true }
        guard fold >= 0, fold < folds, folds >= 2 else { throw ValidationError("--fold must be in 0..<--folds (≥ 2)") }
        var run = TrainingRun(dataRoot: data, output: out, config: config)
        var device = self.device
        // Launched as one of several processes (willis launch, torchrun, srun, an indexed job): data-parallel.
        if let world = try DistributedEnvironment.from() {
            if engineOptions.threads == nil, world.localWorldSize > 1 {
                try Torch.setThreadCount(max(1, ProcessInfo.processInfo.activeProcessorCount / world.localWorldSize))
            }
            if device == "cuda" { device = "cuda:\(world.localRank)" }
            let group = try ProcessGroup(world, backend: device.hasPrefix("cuda") ? .nccl : .gloo, timeout: distTimeout)
            run.parallel = DataParallel(group: group)
        }
        run.folds = folds
        run.validationFold = fold
        run.cacheRoot = cache
        run.resume = resume
        run.initialWeights = initWeights
        run.timeLimit = timeLimit.map { $0 * 60 }
        run.device = try Device(parsing: device)
        let bar = ProgressBar(label: "preparing inputs")
        run.cacheProgress = { done, total in bar.update(done, total) }
        var epochBar: ProgressBar?
        run.batchProgress = { epoch, done, total in
            if done == 1 { epochBar = ProgressBar(label: "epoch \(epoch)") }
            epochBar?.update(done, total)
        }
        run.log = { line in
            bar.finishIfStarted()
            epochBar?.finishIfStarted()
            print(line)
        }
        try run.run()
        if run.parallel?.isLeader ?? true { print("done: \(out)/model.safetensors") }
    }
}

struct LocationPriorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "location-prior",
        abstract: "Store in detector weights where each location's aneurysms lie, fitted to a training folder's localizers.",
        discussion: """
            willis train does this itself (from the training fold); this adds the prior to weights trained \
            before it did, or refits it to other data. The series are prepared as the weights say (through \
            the same cache as training), and each localizer point is placed in the prepared crop. \
            willis predict then reads each series' strongest heatmap peaks, named by the prior.
            """)

    @OptionGroup var engineOptions: EngineOptions
    @Option(help: "RSNA-layout folder (train.csv, train_localizers.csv, series/) the weights were trained on.") var data: String
    @Option(help: "Detector weights (.safetensors from willis train).") var weights: String
    @Option(help: "Write the weights with the prior here (default: replace WEIGHTS).") var out: String?
    @Option(help: "Cache folder (default DATA/.willis-cache).") var cache: String?

    func run() throws {
        _ = try engineOptions.load()
        var fit = LocationPriorFit(dataRoot: data, weights: weights)
        fit.output = out
        fit.cacheRoot = cache
        let bar = ProgressBar(label: "preparing series")
        fit.cacheProgress = { done, total in bar.update(done, total) }
        fit.log = { line in
            bar.finishIfStarted()
            print(line)
        }
        let prior = try fit.run()
        for c in prior.components {
            let name = c.location.columnName.padding(toLength: 44, withPad: " ", startingAt: 0)
            print("  \(name)" + String(format: "%4d points, centre (%6.1f, %6.1f, %6.1f) mm", c.count, c.mean[0], c.mean[1], c.mean[2]))
        }
    }
}

struct TrainCandidatesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-candidates",
        abstract: "Train the detector's second stage: a classifier of the cubes around its heatmap's peaks.",
        discussion: """
            The detector's heatmap ranks small aneurysms below its false peaks. This reads the detector's \
            strongest peaks on every series of a training folder (as willis predict reads them), labels each \
            by the localizer points (a peak within --match-mm of one is an aneurysm), and trains a small 3D \
            network on the prepared image around each, at its finest sampling. It is scored on the peaks of \
            --validation-data (series the detector did not train on give an honest number), or else on every \
            tenth series of the first --data folder, held out. A further --data folder is trained on as the \
            first is, its candidates and points alike, none of it held out. --positive-data adds the \
            localizer points of other folders as aneurysms without reading the detector there. --dot-candidates N adds the dot filter's N \
            strongest candidates per series (willis candidates) to the peaks, in training and, through the \
            weights, in willis predict. Without --detector, the dot filter's candidates are the only ones \
            (--dot-candidates and the experiment file's [preprocessing] are then needed): no detector is \
            trained or read, and the weights carry the preparation and a location prior fitted to the \
            localizer points, so willis predict --candidate-classifier needs no --weights. Writes \
            OUT/candidate-classifier.safetensors; willis predict --candidate-classifier uses it.
            """)

    @OptionGroup var engineOptions: EngineOptions
    @Option(help: "RSNA-layout training folder (train.csv, train_localizers.csv, series/); repeatable: a further folder's candidates and points are trained on as the first's, none of its series held out.") var data: [String] = []
    @Option(help: "Detector weights (.safetensors from willis train) whose peaks are classified (default: none; the dot filter's candidates alone, prepared as --config's [preprocessing] says).") var detector: String?
    @Option(help: "Output folder.") var out: String
    @Option(help: "cpu, cuda or cuda:N: where the detector reads its peaks and the classifier trains.") var device: String = "cpu"
    @Option(help: "RSNA-layout folder whose peaks score the classifier (default: every tenth training series, held out).") var validationData: String?
    @Option(help: "RSNA-layout folder whose localizer points add aneurysm cubes; no peaks are read there (repeatable).") var positiveData: [String] = []
    @Option(help: "k-fold cross-validation: deal the first --data folder's series into this many folds (stratified by Aneurysm Present and modality) and hold out --fold, instead of every tenth series.") var folds: Int?
    @Option(help: "With --folds: the fold held out (0-based): not trained on, scored on unless --validation-data is given, and listed in OUT/\(CandidateClassifierTraining.heldOutListFileName) for willis predict --series-list.") var fold: Int?
    @Option(help: "Cache folder for every folder (default DATA/.willis-cache for each).") var cache: String?
    @Option(help: "TOML experiment file whose [candidates] table sets the recipe (see ExperimentFile.applyCandidates); flags given here override it.") var config: String?
    @Option(help: "Training steps (default 8000, which scored best on validation, RESULTS.md stop 16).") var steps: Int?
    @Option(help: "Minutes from the start by which training and its scoring should end: the steps that fit, planned from the measured step time, with the learning rate annealed to their end; the steps (--steps or the experiment file's) stay the most.") var timeLimit: Double?
    @Option(help: "Minutes from the start after which the steps pause: a checkpoint is written to OUT, no weights, and the command exits with status 75, for --resume to go on from there (a session with a wall clock of its own).") var pauseAfter: Double?
    @Flag(help: "Go on from the checkpoint in OUT (written every 1000 steps and at --pause-after) when there is one, with the same settings and candidates; without one, start from the first step.") var resume = false
    @Option(help: "Cubes per step, half of them aneurysms (default 32).") var batchSize: Int?
    @Option(help: "Learning rate (AdamW, cosine; default 1e-3).") var learningRate: Double?
    @Option(help: "The cube's edge in samples of the prepared image (a multiple of 4, 8 to 128; default \(CandidateClassifier.defaultPatchSize)).") var patchSize: Int?
    @Option(help: "The classifier's channels at its finest sampling, doubled at each coarser one (1 to 256; default \(CandidateClassifier.defaultBaseFilters)).") var baseFilters: Int?
    @Option(help: "Convolutions per sampling at the classifier's two coarser samplings, the further ones residual (1 to 4; default 1).") var depth: Int?
    @Option(help: "Peaks per series (default 20).") var peaks: Int?
    @Option(help: "A peak this close to a localizer point (mm) is an aneurysm (default 4).") var matchMM: Double?
    @Option(help: "Leave out of training the false candidates farther than --match-mm but this close to a localizer point (mm): their cube still holds the aneurysm (default 0: none).") var ignoreMM: Double?
    @Option(help: "Share of each batch's negatives drawn in proportion to the heatmap's value at the peak, 0 to 1 (default 0: uniformly).") var hardNegatives: Double?
    @Option(help: "With --hard-negatives: draw them in proportion to the heatmap value to this power (default 1; 2 or more draws mostly the strongest false peaks).") var hardNegativePower: Double?
    @Option(help: "With --hard-negatives: draw them uniformly from each training series' R strongest false peaks instead (default 0: by the power).") var hardNegativeRank: Int?
    @Flag(help: "Training cubes also take their axes in a random order, beside the random flips.") var permuteAxes = false
    @Option(help: "Also classify this many of the dot filter's candidates per series (willis candidates; read at each series' own voxels, kept in the cache), beside the heatmap's peaks; willis predict then adds them too (default 0: none).") var dotCandidates: Int?
    @Option(help: "With --dot-candidates: look this deep inside the head's outer surface, in mm (default 16).") var dotDepthMM: Double?
    @Option(help: "With --dot-candidates: read them as acrossScales (the maxima of the largest measure over the scales; the default) or eachScale (each scale's maxima, merged strongest first: small aneurysms beside larger vessels).") var dotPeakSearch: DotFilter.PeakSearch?
    @Flag(help: "Negate the cubes of dark-vessel series (T2's flow voids), in training and through the weights in willis predict, so that an aneurysm is a bright ball in every modality.") var alignContrast = false
    @Option(help: "Also show the classifier a second cube of as many samples, each the mean of S³, S times wider (2 to 4; default none): where in the vessel tree the candidate sits.") var contextScale: Int?
    @Flag(help: "Also learn to name the artery under each candidate: aneurysms by their localizer's location, other candidates by the nearest vessel label of the series' _cowseg file; willis predict then names candidates by it rather than by the location prior.") var locationHead = false
    @Option(help: "fp32, bf16 or fastest: bf16 runs the training steps under bf16 autocast, on CUDA and on CPUs with AVX-512 BF16 or AMX (elsewhere fp32, with a warning); fastest times a few steps of each first and trains in the faster; the weights and prediction stay float32 (default fp32).") var precision: TrainingConfig.CandidatePrecision?
    @Option(help: "Write the moving average of the steps' weights with this decay (0 to below 1, e.g. 0.999), scored and calibrated on the validation candidates, and the last step's weights beside it as \(CandidateClassifierTraining.lastStepFileName) (default: the last step's alone).") var averageDecay: Double?
    @Option(help: "Seed (default 0).") var seed: UInt64?

    func validate() throws {
        if let averageDecay, !(0..<1).contains(averageDecay) { throw ValidationError("--average-decay must be from 0 to below 1") }
        guard !data.isEmpty else { throw ValidationError("--data must name at least one training folder") }
        guard (steps ?? 1) > 0, (batchSize ?? 2) >= 2, (peaks ?? 1) > 0 else {
            throw ValidationError("--steps and --peaks must be positive, --batch-size at least 2")
        }
        if let timeLimit, !(timeLimit > 0 && timeLimit.isFinite) { throw ValidationError("--time-limit must be a positive number of minutes") }
        if let pauseAfter, !(pauseAfter > 0 && pauseAfter.isFinite) { throw ValidationError("--pause-after must be a positive number of minutes") }
        for (flag, value) in [("--learning-rate", learningRate), ("--match-mm", matchMM)] {
            if let value, !(value > 0 && value.isFinite) { throw ValidationError("\(flag) must be a positive number") }
        }
        if let patchSize {
            do { try CandidateClassifier.checkSizes(baseFilters: CandidateClassifier.defaultBaseFilters, patchSize: patchSize) } catch { throw ValidationError("--patch-size: \(error)") }
        }
        if let contextScale {
            do { try CandidateClassifier.checkSizes(baseFilters: CandidateClassifier.defaultBaseFilters, patchSize: CandidateClassifier.defaultPatchSize, contextScale: contextScale) } catch { throw ValidationError("--context-scale: \(error)") }
        }
        if let baseFilters {
            do { try CandidateClassifier.checkSizes(baseFilters: baseFilters, patchSize: CandidateClassifier.defaultPatchSize) } catch { throw ValidationError("--base-filters: \(error)") }
        }
        if let depth {
            do { try CandidateClassifier.checkSizes(baseFilters: CandidateClassifier.defaultBaseFilters, patchSize: CandidateClassifier.defaultPatchSize, depth: depth) } catch { throw ValidationError("--depth: \(error)") }
        }
    }

    func run() throws {
        _ = try engineOptions.load()
        guard let first = data.first else { throw ValidationError("--data must name at least one training folder") }
        var training: CandidateClassifierTraining
        if let detector {
            training = CandidateClassifierTraining(dataRoot: first, detectorWeights: detector, output: out)
        } else {
            // No detector to say how series are prepared: the experiment file's [preprocessing] does.
            guard let path = config else {
                throw ValidationError("without --detector, --config must give the preparation ([preprocessing]) and --dot-candidates the candidates")
            }
            var recipe = TrainingConfig()
            try applyExperimentFile(path) { try ExperimentFile.apply($0, to: &recipe, folder: (path as NSString).deletingLastPathComponent) }
            training = CandidateClassifierTraining(dataRoot: first, preparation: recipe.preparation, output: out)
        }
        if let path = config { try applyExperimentFile(path) { try ExperimentFile.applyCandidates($0, to: &training) } }
        do { training.device = try Device(parsing: device) } catch { throw ValidationError("--device: \(error)") }
        training.cacheRoot = cache
        training.validationRoot = validationData
        switch (folds, fold) {
        case (nil, nil): break
        case let (k?, i?):
            do { training.heldOutFold = try HeldOutFold(index: i, of: k) } catch { throw ValidationError("--fold/--folds: \(error)") }
        default: throw ValidationError("--folds and --fold go together: the number of folds, and the one held out")
        }
        training.positiveRoots = positiveData
        training.furtherDataRoots = Array(data.dropFirst())
        if let steps { training.steps = steps }
        training.timeLimit = timeLimit.map { $0 * 60 }
        if let batchSize { training.batchSize = batchSize }
        if let learningRate { training.learningRate = learningRate }
        if let peaks { training.peaksPerSeries = peaks }
        if let patchSize { training.patchSize = patchSize }
        if let baseFilters { training.baseFilters = baseFilters }
        if let depth { training.depth = depth }
        if let matchMM { training.matchMM = matchMM }
        if let ignoreMM {
            guard ignoreMM.isFinite && (0...100).contains(ignoreMM) else { throw ValidationError("--ignore-mm must be from 0 to 100 mm") }
            training.ignoreMM = ignoreMM
        }
        if permuteAxes { training.permuteAxes = true }
        if locationHead { training.locationHead = true }
        if alignContrast { training.alignContrast = true }
        if let contextScale { training.contextScale = contextScale }
        if let hardNegativePower {
            guard (0...16).contains(hardNegativePower) else { throw ValidationError("--hard-negative-power must be between 0 and 16") }
            training.hardNegativePower = hardNegativePower
        }
        if let hardNegativeRank {
            guard (0...1000).contains(hardNegativeRank) else { throw ValidationError("--hard-negative-rank must be between 0 and 1000") }
            training.hardNegativeRank = hardNegativeRank
        }
        if let hardNegatives {
            guard (0...1).contains(hardNegatives) else { throw ValidationError("--hard-negatives must be between 0 and 1") }
            training.hardNegativeShare = hardNegatives
        }
        if let dotCandidates {
            guard (0...1000).contains(dotCandidates) else { throw ValidationError("--dot-candidates must be between 0 and 1000") }
            training.dotFilter = dotCandidates == 0 ? nil : DotFilterCandidates(count: dotCandidates, depthMM: training.dotFilter?.depthMM ?? 16,
                                                                                 peakSearch: training.dotFilter?.peakSearch)
        }
        if let dotDepthMM {
            guard dotDepthMM.isFinite, (0...200).contains(dotDepthMM) else { throw ValidationError("--dot-depth-mm must be between 0 and 200") }
            guard training.dotFilter != nil else { throw ValidationError("--dot-depth-mm needs --dot-candidates (or dot_candidates in the experiment file)") }
            training.dotFilter?.depthMM = dotDepthMM
        }
        if let dotPeakSearch {
            guard training.dotFilter != nil else { throw ValidationError("--dot-peak-search needs --dot-candidates (or dot_candidates in the experiment file)") }
            training.dotFilter?.peakSearch = dotPeakSearch
        }
        training.dotFilter?.separationMM = training.matchMM
        if let seed { training.seed = seed }
        if let precision { training.precision = precision }
        if let averageDecay { training.averageDecay = averageDecay }
        training.resume = resume
        training.pauseAfter = pauseAfter.map { $0 * 60 }
        var bar: ProgressBar?
        var stage = ""
        training.progress = { label, done, total in
            if label != stage {
                bar?.finishIfStarted()
                bar = ProgressBar(label: label)
                stage = label
            }
            bar?.update(done, total)
        }
        training.log = { line in
            bar?.finishIfStarted()
            print(line)
            fflush(stdout)  // a log redirected to a file shows each step as it comes
        }
        do {
            try training.run()
        } catch let paused as TrainingPaused {
            bar?.finishIfStarted()
            print(paused.description)
            // EX_TEMPFAIL: not done, and not failed; a script's next step (predict) should not run on it.
            throw ExitCode(75)
        }
    }
}

/// Reads the experiment file at `path` and hands its entries to `apply`; its mistakes name the file and line.
func applyExperimentFile(_ path: String, _ apply: ([String: (value: ExperimentFile.Value, line: Int)]) throws -> Void) throws {
    let text: String
    do { text = try String(contentsOfFile: path, encoding: .utf8) } catch { throw ValidationError("cannot read \(path): \(error.localizedDescription)") }
    do {
        try apply(try ExperimentFile.parse(text))
    } catch let e as ExperimentFile.Error {
        throw ValidationError("\(path): \(e)")
    }
}

/// fp32 or bf16 on the command line, as in the experiment file.
extension TrainingConfig.Precision: ExpressibleByArgument {}
extension TrainingConfig.CandidatePrecision: ExpressibleByArgument {}
