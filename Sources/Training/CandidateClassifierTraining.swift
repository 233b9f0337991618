import Anatomy
import AtomicFile
import DICOM
import Dataset
import Foundation
import Inference
import Models
import Preprocessing
import Scoring
import Torch
import VolumeCore

/// `willis train-candidates`: trains the detector's second stage (`CandidateClassifier`) on the cubes
/// around the detector's own heatmap peaks in a training folder.
///
/// - Examples: every series is prepared as the detector's weights say (through the training cache);
///   the detector's heatmap (read as `willis predict` reads it, mirror included) gives up to
///   `peaksPerSeries` peaks. A peak within `matchMM` of a localizer point is a positive, any other a
///   negative; each localizer point is also a positive of its own. So the classifier learns to tell the
///   aneurysms from exactly the false peaks the detector makes.
/// - The classifier is scored on peaks alone, as prediction will use it, against the heatmap's own
///   ranking of the same peaks: on a validation folder (`validationRoot`) if one is given, else on every
///   tenth training series (in UID order), held out. The detector usually trained on those, so only a
///   validation folder it never saw gives an honest number.
/// - Folders in `positiveRoots` add their localizer points as positives without reading the detector's
///   peaks there: a point's cube costs a cached preparation, a series' peaks a prediction (about 2 s).
///   Folders in `furtherDataRoots` are trained on as `dataRoot` is, candidates and points alike, with
///   none of their series held out.
/// - Batches hold as many positives as negatives; cubes are shifted by up to `jitter` samples and
///   flipped along each axis at random (and, with `permuteAxes`, take their axes in a random order). A
///   share `hardNegativeShare` of each batch's negatives is drawn in proportion to the heatmap's value at
///   the peak raised to `hardNegativePower` (`NegativeSampler`), or with `hardNegativeRank` uniformly from
///   each series' strongest false peaks, the rest uniformly.
/// - Without detector weights, the dot filter (`dotFilter`) is the only source of candidates: series are
///   prepared as `preparation` says, every candidate's heatmap value is 0, and the weights carry what
///   prediction then needs from a detector: the preparation itself and a location prior fitted to the
///   localizer points of the training and positive folders. Such a second stage stands alone
///   (`Predictor(candidateClassifiers:)`), and trains on a CPU in the time of its steps: no detector.
public struct CandidateClassifierTraining {
    public var dataRoot: String
    /// The detector whose heatmap peaks are the candidates; nil: the dot filter's candidates alone.
    public var detectorWeights: String?
    /// How series are prepared when no detector's weights say so (the experiment file's `[preprocessing]`).
    public var preparation: Preparation?
    public var output: String
    public var cacheRoot: String?
    /// An RSNA-layout folder whose peaks score the classifier instead of held-out training series.
    public var validationRoot: String?
    /// k-fold cross-validation: this fold of `dataRoot`'s series (`HeldOutFold`: stratified by Aneurysm
    /// Present and modality) is held out instead of every tenth series: not trained on, not fitted into
    /// the location prior, and scored on unless `validationRoot` scores instead. Its series are listed in
    /// `heldOutListFileName` for `willis predict --series-list`; the folds' out-of-fold predictions, joined
    /// by `willis merge-predictions`, give the cross-validated score.
    public var heldOutFold: HeldOutFold?
    /// RSNA-layout folders whose localizer points are further positives.
    public var positiveRoots: [String] = []
    /// Further RSNA-layout training folders: their series give candidates and points as `dataRoot`'s do
    /// (their false candidates are negatives, which a positive folder's are not), and none is held out.
    public var furtherDataRoots: [String] = []
    public var steps = 8000
    /// When set, a wall-clock limit in seconds from the run's start: the steps stop as `StepBudget` plans,
    /// with the learning-rate schedule annealed to the steps that fit, so that training and the scoring
    /// after it end within the limit; `steps` stays the most. A limit spent by the preparation is
    /// `TimeLimitSpent`, before any step.
    public var timeLimit: Double?
    public var batchSize = 32
    public var learningRate = 1e-3
    public var baseFilters = CandidateClassifier.defaultBaseFilters
    public var patchSize = CandidateClassifier.defaultPatchSize
    /// Convolutions per sampling at 12³ and 6³ (`CandidateClassifier.depth`; 1: the network every result
    /// before stop 51 trained).
    public var depth = 1
    public var peaksPerSeries = 20
    public var peakThreshold: Float = 0.01
    public var matchMM = 4.0
    /// Candidates farther than `matchMM` from a localizer point but within this distance are left out
    /// of training (not of scoring): their cube still holds the aneurysm off its centre, and calling it
    /// false teaches the classifier to reject an aneurysm the candidate search placed a few millimetres
    /// off. At or below `matchMM`: no such zone.
    public var ignoreMM = 0.0
    public var jitter = 2
    /// Share of each batch's negatives drawn in proportion to their heatmap value (0: all uniformly).
    public var hardNegativeShare = 0.0
    /// The power of the heatmap value those negatives are drawn in proportion to: 1 leans only slightly
    /// towards the strong false peaks (their values are close together), 2 or more draws mostly them.
    public var hardNegativePower = 1.0
    /// When above 0, the hard negatives are instead drawn uniformly from each training series' this many
    /// strongest false peaks (`NegativeSampler.rankWeights`); the power is then not used.
    public var hardNegativeRank = 0
    /// Training cubes also take their axes in a random order (`axisOrders`), beside the flips.
    public var permuteAxes = false
    /// A second source of candidates: the dot filter's maxima on each series' own voxels, added to the
    /// heatmap's peaks in training, in scoring and (through the weights' settings) in prediction.
    public var dotFilter: DotFilterCandidates?
    /// Cubes of dark-vessel series (T2) are negated, in training and (through the weights' settings) in
    /// prediction, so that an aneurysm is bright in every modality (`CandidateClassifier.aligned`).
    public var alignContrast = false
    /// When set, the classifier also sees a context cube this many times wider (`CandidateClassifier`),
    /// shifted with the cube by the nearest whole context sample.
    public var contextScale: Int?
    /// When true, the classifier also learns to name the artery under each candidate
    /// (`CandidateClassifier.namesLocations`): aneurysms by their localizer's location, other candidates
    /// by the vessel label (`_cowseg`) nearest them within `locationRadiusMM`, where the series has one.
    public var locationHead = false
    /// How far from a labelled vessel voxel a candidate still takes its label.
    public var locationRadiusMM = 4.8
    /// The location head's cross-entropy is added to the aneurysm loss with this weight.
    public var locationWeight = 1.0
    public var seed: UInt64 = 0
    /// Mixed precision of the training steps: bf16 autocast where it runs natively (CUDA, CPUs with
    /// AVX-512 BF16 or AMX), else float32 with a warning (`MixedPrecision.usable`); `fastest`: where
    /// bf16 runs natively, a few steps of each on copies of the network are timed first and the faster
    /// is trained in (the run's weights are then those of a run given it), else float32. The weights, the
    /// validation scores and prediction stay float32.
    public var precision: TrainingConfig.CandidatePrecision?
    /// When set (0 ≤ d < 1), the weights written are the exponential moving average of every step's
    /// weights with this decay (the first stage's `emaDecay`), scored and calibrated as they will be read;
    /// the last step's weights go beside them, scored and calibrated too, as
    /// `lastStepFileName`, so one training run compares the two. nil: the last step's weights alone.
    public var averageDecay: Double?
    /// Continue from `checkpointFileName` in `output` when it is there (a run paused, or stopped before its
    /// end); when it is not, start from the first step. The checkpoint must come from the same settings and
    /// candidates, or the run is refused.
    public var resume = false
    /// Seconds from the start after which the steps pause: the checkpoint is written and `TrainingPaused`
    /// thrown, with no weights written, for a run with `resume` to go on from there (a session with a wall
    /// clock of its own). nil: never.
    public var pauseAfter: Double?
    /// A checkpoint is also written every this many steps, so a run that is killed loses at most these.
    public var checkpointEvery = 1000
    /// The CPU flags that decide whether bf16 runs natively (nil: unknown, the request is kept).
    public var cpuFlags: Set<String>? = HostCPU.flags
    public var device: Device = .cpu
    public var log: (String) -> Void = { print($0) }
    public var progress: (String, Int, Int) -> Void = { _, _, _ in }
    /// The wall clock `timeLimit` is measured on (a test gives its own).
    public var now: () -> Date = { Date() }

    /// The file beside the weights that lists the held-out fold's series, one UID a line.
    public static let heldOutListFileName = "held-out-series.txt"

    public init(dataRoot: String, detectorWeights: String, output: String) {
        self.dataRoot = dataRoot
        self.detectorWeights = detectorWeights
        self.output = output
    }

    /// A second stage with no detector, on images prepared as `preparation` says: its candidates are the
    /// dot filter's (`dotFilter`, which must then be set).
    public init(dataRoot: String, preparation: Preparation, output: String) {
        self.dataRoot = dataRoot
        self.preparation = preparation
        self.output = output
    }

    /// With `averageDecay`, the last step's weights, beside the average in the output folder.
    public static let lastStepFileName = "candidate-classifier-last-step.safetensors"
    /// The steps' checkpoint in the output folder (weights, moving average, optimizer, generator); removed
    /// when the run writes its weights.
    public static let checkpointFileName = "candidate-classifier-checkpoint.safetensors"

    /// The context cube's margin on every side, in its own samples: enough for the cube's `jitter`.
    public var contextJitter: Int { contextScale.map { (jitter + $0 - 1) / $0 } ?? 0 }

    /// One cube around a candidate, cut `jitter` samples wider on every side than the classifier's patch
    /// (and its context cube, `contextJitter` wider).
    public struct Example: Sendable {
        public var uid: String
        public var positive: Bool
        /// A candidate prediction will score, from the heatmap's peaks or the dot filter (the others sit
        /// on localizer points).
        public var isPeak: Bool
        public var heatmap: Double
        public var cube: [Float]
        public var source: CandidateSource = .heatmap
        /// Empty without a context channel.
        public var context: [Float] = []
        /// How far the candidate lies from the nearest localizer point of its series, in mm (nil: none).
        public var nearestPointMM: Double? = nil
        /// Where the candidate lies in the crop frame (`CropGrid.position`, mm).
        public var position: [Double] = [0, 0, 0]
        /// The artery under the candidate, when known (`locationHead`): the aneurysm's location, or the
        /// nearest vessel label's.
        public var location: LocationLabel? = nil
    }

    /// Whether `example` is a false candidate in the zone training leaves out (`ignoreMM`).
    public func isIgnored(_ example: Example) -> Bool {
        guard !example.positive, let d = example.nearestPointMM else { return false }
        return d <= ignoreMM
    }

    public struct Report: Sendable {
        public var trainingExamples: (positive: Int, negative: Int)
        /// Held-out peaks: how many are positives, and the AUC of the heatmap's value and of the classifier.
        public var heldOutPeaks: (positive: Int, negative: Int)
        public var heldOutHeatmapAUC: Double?
        public var heldOutClassifierAUC: Double?
        /// With `averageDecay`: the AUC of the last step's weights (`heldOutClassifierAUC` is the average's).
        public var lastStepClassifierAUC: Double?
        /// Per scoring rule, the calibration fitted on the scored peaks and written with the weights.
        public var calibrations: [String: CandidateCalibration]
        /// The mean heatmap value of the negatives the batches drew: how far `hardNegativeShare` moved
        /// training towards the strong false peaks.
        public var drawnNegativeHeatmap: Double
        /// With the location head: how often it and the location prior name the scored candidates' artery right.
        public var naming: NamingAccuracy?
        /// The steps run: `steps`, or fewer where `timeLimit` stopped them.
        public var stepsRun: Int
        public var seconds: Double
    }

    /// How often the location head's most probable location is the artery under a scored candidate, beside
    /// the location prior's, over the candidates whose artery is known: the aneurysms (by their localizer)
    /// and all of them (the others by their vessel label).
    public struct NamingAccuracy: Sendable, Equatable {
        public var aneurysms: Int, named: Int
        public var headOnAneurysms: Double, headOnAll: Double
        public var priorOnAneurysms: Double?, priorOnAll: Double?
    }

    /// The examples of the series `uids` of `cache`, with the detector read through `predictor` (and,
    /// with `dotFilter`, the dot filter through the series under `seriesRoot`; without a `predictor`, the
    /// dot filter alone, each candidate's heatmap value 0); with `readingPeaks` false, only the localizer
    /// points' cubes. With `alignContrast`, which series have dark vessels is
    /// read from their DICOM (the cache's record, `DotFilter.VesselContrast(series)`), as prediction reads
    /// it; the series whose table modality (`modalities`, by UID) says otherwise are logged, since
    /// prediction will see them as their DICOM reads.
    public func examples(_ uids: [String], cache: PreprocessedCache, predictor: Predictor?, seriesRoot: String, readingPeaks: Bool = true,
                         modalities: [String: String] = [:]) throws -> [Example] {
        let preparation = cache.preparation
        let n = preparation.inputSubdivision
        let size = patchSize + 2 * jitter
        let signature = predictor == nil ? nil : try detectorSignature()
        let folder = signature.map { peaksFolder(cache, signature: $0) }
        let stage = !readingPeaks ? "cutting the localizer points' cubes" : predictor == nil ? "reading the dot filter's candidates" : "reading the detector's peaks"
        var out: [Example] = []
        var disagreeing: [(uid: String, table: String, dicom: DotFilter.VesselContrast)] = []
        let grid = preparation.cropGrid
        let territoryRadius = locationRadiusMM / preparation.spacing
        for (done, uid) in uids.enumerated() {
            progress(stage, done, uids.count)
            let input = try cache.load(uid)
            let targets: [DetectionTargets.Point]
            var territories: [UInt8]?
            if locationHead && readingPeaks {
                // Only candidates read here are named by a vessel; localizer points carry their location.
                let (read, vessels) = try cache.targets(uid)
                targets = read.points
                territories = vessels.map { VesselTerritories.widened($0, shape: preparation.shape, radius: territoryRadius) }
            } else {
                targets = try cache.detectionTargets(uid).points
            }
            // The artery at grid voxel `v` by the widened vessel labels (1…13 are the locations in order).
            func vesselLocation(_ v: [Int]) -> LocationLabel? {
                let shape = preparation.shape
                guard locationHead, let territories, isVoxel(v, inside: shape) else { return nil }
                let label = Int(territories[(v[2] * shape[1] + v[1]) * shape[2] + v[0]])
                return label >= 1 && label <= LocationLabel.locations.count ? LocationLabel(rawValue: label - 1) : nil
            }
            func named(_ l: LocationLabel) -> LocationLabel? { locationHead && l != .aneurysmPresent ? l : nil }
            var darkVessels = false
            if alignContrast {
                let contrast = try cache.vesselContrast(uid, seriesRoot: seriesRoot)
                darkVessels = contrast == .darkMR
                if let table = modalities[uid], DotFilter.VesselContrast(modality: table) != contrast {
                    disagreeing.append((uid, table, contrast))
                }
            }
            func cube(_ voxel: [Double]) -> [Float] {
                CandidateClassifier.aligned(CandidateClassifier.cube(input, shape: preparation.inputShape,
                                                                     centre: CandidateClassifier.sampleCentre(gridVoxel: voxel, subdivision: n), size: size),
                                            darkVessels: darkVessels)
            }
            func context(_ voxel: [Double]) -> [Float] {
                guard let scale = contextScale else { return [] }
                return CandidateClassifier.aligned(CandidateClassifier.contextCube(input, shape: preparation.inputShape,
                                                                                   centre: CandidateClassifier.sampleCentre(gridVoxel: voxel, subdivision: n),
                                                                                   size: patchSize + 2 * contextJitter, scale: scale),
                                                   darkVessels: darkVessels)
            }
            var found: [HeatmapPeak] = [], inferred: [Float]? = nil
            if readingPeaks, let predictor, let folder, let signature {
                (found, inferred) = try peaks(uid, input: input, predictor: predictor, folder: folder, signature: signature)
            }
            if readingPeaks, let dots = dotFilter {
                let points = try dotCandidates(uid, seriesRoot: seriesRoot, cache: cache)
                // Without a detector there is no heatmap: `adding` gives every candidate the value 0.
                var heat: [Float] = []
                if let predictor, let folder { heat = try inferred ?? heatmap(uid, input: input, predictor: predictor, folder: folder) }
                found = HeatmapPeak.adding(Array(points.prefix(dots.count)), source: .dotFilter, to: found, heatmap: heat,
                                           shape: preparation.shape, spacing: preparation.spacing, separationMM: dots.separationMM)
            }
            for peak in found {
                let v = peak.voxel.map(Double.init)
                let distances = targets.map { t in
                    let d = [t.i - v[0], t.j - v[1], t.k - v[2]].map { $0 * preparation.spacing }
                    return (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).squareRoot()
                }
                let nearest = distances.indices.min { distances[$0] < distances[$1] }
                let positive = nearest.map { distances[$0] <= matchMM } ?? false
                // An aneurysm candidate is named by its localizer point, any other by the vessel under it.
                let location = positive ? nearest.flatMap { named(targets[$0].location) } : vesselLocation(peak.voxel)
                out.append(Example(uid: uid, positive: positive, isPeak: true, heatmap: peak.probability, cube: cube(v),
                                   source: peak.source, context: context(v), nearestPointMM: nearest.map { distances[$0] },
                                   position: grid.position(i: v[0], j: v[1], k: v[2]), location: location))
            }
            for t in targets {
                let v = [t.i, t.j, t.k]
                out.append(Example(uid: uid, positive: true, isPeak: false, heatmap: 1, cube: cube(v), context: context(v), nearestPointMM: 0,
                                   position: grid.position(i: t.i, j: t.j, k: t.k), location: named(t.location)))
            }
        }
        progress(stage, uids.count, uids.count)
        if !disagreeing.isEmpty {
            let shown = disagreeing.prefix(5).map { "\($0.uid) (\($0.table), read as \($0.dicom.rawValue))" }.joined(separator: ", ")
            log("aligned contrast: \(disagreeing.count) of \(uids.count) series under \(seriesRoot) read from their DICOM (echo time, description) otherwise than their table modality says, and are trained as their DICOM reads, as prediction will read them: \(shown)\(disagreeing.count > 5 ? ", …" : "")")
        }
        return out
    }

    /// The detector weights as the kept peaks know them: their path, size and modification time.
    func detectorSignature() throws -> String {
        guard let detectorWeights else { throw TorchError.invalidArgument("no detector weights: no peaks are kept") }
        let attributes = try FileManager.default.attributesOfItem(atPath: detectorWeights)
        return "\(URL(fileURLWithPath: detectorWeights).standardizedFileURL.path)|\((attributes[.size] as? Int) ?? -1)|"
            + "\(((attributes[.modificationDate] as? Date) ?? .distantPast).timeIntervalSince1970)"
    }

    /// Where the detector's peaks are kept: beside the prepared inputs in the cache, in a folder named by
    /// the detector's signature (`detectorSignature`).
    public func peaksFolder(_ cache: PreprocessedCache) throws -> String {
        try peaksFolder(cache, signature: detectorSignature())
    }

    func peaksFolder(_ cache: PreprocessedCache, signature: String) -> String {
        // FNV-1a, for a short stable name.
        let hash = signature.utf8.reduce(UInt64(0xcbf2_9ce4_8422_2325)) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }
        return "\(cache.folder)/peaks-\(String(hash, radix: 16))"
    }

    /// The detector's peaks on the prepared `input` of `uid`. Reading them costs a prediction per series,
    /// the most of a run, so they are kept in `folder` and read back by any later run with the same
    /// detector `signature` and peak settings. The heatmap comes back too when it was inferred here (nil
    /// when the peaks were read from the cache), so the dot filter's candidates need not read it again.
    func peaks(_ uid: String, input: [Float], predictor: Predictor, folder: String, signature: String) throws -> (peaks: [HeatmapPeak], heatmap: [Float]?) {
        struct Stored: Codable {
            var detector: String, count: Int, threshold: Float
            var voxels: [[Int]], probabilities: [Double]
        }
        let path = "\(folder)/\(uid).json"
        if let data = FileManager.default.contents(atPath: path), let old = try? JSONDecoder().decode(Stored.self, from: data),
           old.detector == signature, old.count == peaksPerSeries, old.threshold == peakThreshold, old.voxels.count == old.probabilities.count {
            return (zip(old.voxels, old.probabilities).map { HeatmapPeak(voxel: $0, probability: $1) }, nil)
        }
        let heat = try inferHeatmap(uid, input: input, predictor: predictor, folder: folder)
        let found = HeatmapPeak.find(heat, shape: predictor.preparation.shape, count: peaksPerSeries, threshold: peakThreshold)
        let stored = Stored(detector: signature, count: peaksPerSeries, threshold: peakThreshold,
                            voxels: found.map(\.voxel), probabilities: found.map(\.probability))
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try AtomicFile.write(try JSONEncoder().encode(stored), to: path)
        return (found, heat)
    }

    /// The detector's heatmap of `uid`; with `dotFilter`, also written beside its peaks
    /// (`<uid>.heatmap.f32`, 3 MB for the usual grid), since the filter's candidates take their heatmap
    /// value from it. Without the filter nothing reads it again, so it is not written.
    func inferHeatmap(_ uid: String, input: [Float], predictor: Predictor, folder: String) throws -> [Float] {
        guard let heat = try predictor.infer(input, heatmap: true).heatmap else {
            throw TorchError.invalidArgument("\(detectorWeights ?? "no detector") gives no heatmap: the heatmap's peaks need detector weights")
        }
        if dotFilter != nil {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try AtomicFile.write(heat.withUnsafeBytes { Data($0) }, to: "\(folder)/\(uid).heatmap.f32")
        }
        return heat
    }

    /// The heatmap `inferHeatmap` wrote for `uid`, or, when there is none (peaks kept before it was
    /// written), inferred again.
    func heatmap(_ uid: String, input: [Float], predictor: Predictor, folder: String) throws -> [Float] {
        let count = predictor.preparation.shape.reduce(1, *)
        if let data = FileManager.default.contents(atPath: "\(folder)/\(uid).heatmap.f32"), data.count == count * 4 {
            return data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        }
        return try inferHeatmap(uid, input: input, predictor: predictor, folder: folder)
    }

    /// The dot filter's candidates of `uid` (its series under `seriesRoot`) as voxels of its prepared grid
    /// (the record in `cache`), kept beside the prepared inputs: the filter costs a read of the series
    /// and about 1.5 s. Kept per filter setting (`DotFilterCandidates.count`, `depthMM` and a peak search
    /// other than across the scales) and per version of the filter's code (`DotFilter.revision`).
    func dotCandidates(_ uid: String, seriesRoot: String, cache: PreprocessedCache) throws -> [[Int]] {
        guard let dots = dotFilter else { return [] }
        let search = dots.filter.peakSearch == .acrossScales ? "" : "-\(dots.filter.peakSearch.rawValue)"
        let folder = "\(cache.folder)/dots-r\(DotFilter.revision)-\(dots.count)-\(dots.depthMM)\(search)"
        let path = "\(folder)/\(uid).json"
        if let data = FileManager.default.contents(atPath: path), let kept = try? JSONDecoder().decode([[Int]].self, from: data) {
            return kept
        }
        let recordFile = cache.recordPath(uid)
        guard let data = FileManager.default.contents(atPath: recordFile),
              let record = try? JSONDecoder().decode(PreparationRecord.self, from: data) else {
            throw DatasetError(file: recordFile, reason: "no preparation record: the dot filter's candidates need the prepared grid (improved mode)")
        }
        let series = try SeriesLoader().load("\(seriesRoot)/\(uid)")
        let points = dots.filter.candidates(series.volume, contrast: DotFilter.VesselContrast(series), count: dots.count, depthMM: dots.depthMM,
                                            on: record.output, shape: cache.preparation.shape)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try AtomicFile.write(try JSONEncoder().encode(points), to: path)
        return points
    }

    /// A batch [N, C, P, P, P] of `chosen` examples: each cube cut at `offsets` (nil: the centre), its
    /// axes reordered as `axes` says (nil: as they are) and flipped along the axes `flips` says; with a
    /// context channel (C = 2), the context cube after it, cut at the nearest context sample to the same
    /// shift and turned the same way.
    public func batch(_ chosen: [Example], offsets: [[Int]]?, flips: [[Bool]]?, axes: [[Int]]? = nil) throws -> Tensor {
        let p = patchSize, size = patchSize + 2 * jitter, channels = contextScale == nil ? 1 : 2
        var values: [Float] = []
        values.reserveCapacity(chosen.count * channels * p * p * p)
        for (e, example) in chosen.enumerated() {
            let offset = offsets?[e] ?? [jitter, jitter, jitter]
            let flip = flips?[e] ?? [false, false, false], order = axes?[e] ?? [0, 1, 2]
            values += Self.patch(example.cube, size: size, patch: p, offset: offset, flips: flip, axes: order)
            if let scale = contextScale {
                let margin = contextJitter
                let shifted = offset.map { margin + Int((Double($0 - jitter) / Double(scale)).rounded()) }
                values += Self.patch(example.context, size: p + 2 * margin, patch: p, offset: shifted, flips: flip, axes: order)
            }
        }
        return try Tensor(values, shape: [chosen.count, channels, p, p, p], device: device)
    }

    /// The six orders of the three axes: with the flips, the 48 ways a cube can be turned or mirrored
    /// onto itself. An aneurysm is one whichever way it is seen, so each order is a fair training view;
    /// it multiplies the few hundred aneurysm cubes by six.
    public static let axisOrders = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]]

    /// What a checkpoint holds beside the tensors: where the steps are, and the run it belongs to.
    struct CheckpointState: Codable {
        var step: Int
        var rngState: UInt64
        var drawnSum: Double
        var drawnCount: Int
        /// The precision the steps ran in (`fastest` chose it when the run started).
        var bf16: Bool
        /// `checkpointRun`'s description of the run.
        var run: [String: String]
    }
    static let checkpointModel = "candidate_classifier_training"
    /// The moving average's tensors in a checkpoint, beside the network's.
    static let averagePrefix = "average/"

    /// What a resumed run must share with the run that wrote the checkpoint, for its steps to be that
    /// run's: the network, the recipe that draws and weighs each step, and the candidates trained on (in
    /// order, since the draws are indices). Not the time limit or the pause, which only say where to stop.
    func checkpointRun(positives: [Example], negatives: [Example]) -> [String: String] {
        // FNV-1a over each candidate's series, label, source and place: the same candidates in the same order.
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for e in positives + negatives {
            let text = "\(e.uid)|\(e.positive)|\(e.source)|\(e.position.map { String(format: "%.3f", $0) })|\(e.location.map { "\($0.rawValue)" } ?? "-")|\(e.heatmap)\n"
            for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        }
        return [
            "network": "base \(baseFilters), cube \(patchSize), context \(contextScale.map(String.init) ?? "none"), depth \(depth), location head \(locationHead)",
            "steps": "\(steps)",
            "recipe": "batch \(batchSize), learning rate \(learningRate), seed \(seed), jitter \(jitter), axes \(permuteAxes), location weight \(locationWeight)",
            "negatives": "hard share \(hardNegativeShare), power \(hardNegativePower), rank \(hardNegativeRank)",
            "average": averageDecay.map { "\($0)" } ?? "none",
            "candidates": "\(positives.count) positive, \(negatives.count) negative, \(String(hash, radix: 16))",
            "contrast": "aligned \(alignContrast)",
        ]
    }

    /// `precision = fastest`: steps of each precision run before the timed ones (the first steps build
    /// oneDNN's kernels for the shapes).
    static let precisionWarmUpSteps = 3
    /// `precision = fastest`: timed steps of each precision.
    static let precisionTimedSteps = 8

    /// The median seconds a step takes for each of `types`: `makeStep` gives, for each, a closure that runs
    /// one step. Each first runs `warmUp` untimed steps; the timed steps then take turns, so that a load
    /// that comes and goes on the machine weighs on every type alike.
    static func medianStepTimes(of types: [DType?], warmUp: Int, timed: Int,
                                makeStep: (DType?) throws -> () throws -> Void) throws -> [Double] {
        let steps = try types.map(makeStep)
        for step in steps { for _ in 0..<warmUp { try step() } }
        var seconds = Array(repeating: [Double](), count: steps.count)
        let clock = ContinuousClock()
        for _ in 0..<max(timed, 1) {
            for (i, step) in steps.enumerated() {
                let d = try clock.measure { try step() }
                seconds[i].append(Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18)
            }
        }
        return seconds.map { s in
            let sorted = s.sorted(), middle = sorted.count / 2
            return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
        }
    }

    /// The `patch`³ samples of `cube` (edge `size`, stored depth, height, width) from `offset` on, with
    /// every argument in x, y, z order: output axis d walks the cube's axis `axes[d]`, backwards where
    /// `flips[d]`.
    public static func patch(_ cube: [Float], size: Int, patch p: Int, offset: [Int], flips: [Bool], axes: [Int] = [0, 1, 2]) -> [Float] {
        let stride = [1, size, size * size]
        let step = (0..<3).map { d in flips[d] ? -stride[axes[d]] : stride[axes[d]] }
        let start = (0..<3).map { offset[$0] * stride[$0] }.reduce(0, +)
            + (0..<3).map { d in flips[d] ? (p - 1) * stride[axes[d]] : 0 }.reduce(0, +)
        var out = [Float](repeating: 0, count: p * p * p)
        var at = 0
        for c in 0..<p {
            for b in 0..<p {
                let row = start + c * step[2] + b * step[1]
                for a in 0..<p {
                    out[at] = cube[row + a * step[0]]
                    at += 1
                }
            }
        }
        return out
    }

    /// The classifier's probabilities for `examples`, cut at their centres (with their context, when the
    /// classifier takes it), and, with the location head, their 13 location probabilities: read from the
    /// cube and its left-right mirror as prediction reads them (`CandidateClassifier.read`).
    public func probabilities(_ model: CandidateClassifier, _ examples: [Example]) throws -> (q: [Double], locations: [[Double]]?) {
        model.store.isTraining = false
        defer { model.store.isTraining = true }
        return try Torch.withNoGrad {
            var q: [Double] = [], locations: [[Double]]? = model.namesLocations ? [] : nil
            for start in stride(from: 0, to: examples.count, by: 64) {
                let chunk = Array(examples[start..<min(start + 64, examples.count)])
                let read = try model.read(batch(chunk, offsets: nil, flips: nil), positions: chunk.map(\.position))
                q += read.q
                if let named = read.locations { locations? += named }
            }
            return (q, locations)
        }
    }

    /// `NamingAccuracy` of the head's probabilities `head` (one row per example) and of `prior`, over the
    /// `examples` with a known location; nil when none has one.
    static func namingAccuracy(_ examples: [Example], head: [[Double]]?, prior: LocationPrior?) -> NamingAccuracy? {
        guard let head, head.count == examples.count else { return nil }
        func best(_ p: [Double]) -> Int { p.indices.max { p[$0] < p[$1] } ?? -1 }
        let known = examples.indices.filter { examples[$0].location != nil }
        let aneurysms = known.filter { examples[$0].positive }
        guard !known.isEmpty else { return nil }
        func share(_ rows: [Int], _ name: (Int) -> Int) -> Double {
            rows.isEmpty ? .nan : Double(rows.filter { name($0) == examples[$0].location?.rawValue }.count) / Double(rows.count)
        }
        let byHead = { (e: Int) in best(head[e]) }
        let byPrior = prior.map { p in { (e: Int) in best(p.posterior(at: examples[e].position)) } }
        return NamingAccuracy(aneurysms: aneurysms.count, named: known.count,
                              headOnAneurysms: share(aneurysms, byHead), headOnAll: share(known, byHead),
                              priorOnAneurysms: byPrior.map { share(aneurysms, $0) }, priorOnAll: byPrior.map { share(known, $0) })
    }

    /// For each scoring rule, the calibration of its scores on the scored peaks (`heldOut`, with the
    /// classifier's probabilities `q`); rules whose fit fails (one class only) are left out.
    static func calibrations(_ heldOut: [Example], q: [Double], source: String,
                             rules: [CandidateScoring] = CandidateScoring.allCases) -> [String: CandidateCalibration] {
        var out: [String: CandidateCalibration] = [:]
        for rule in rules {
            let scores = zip(heldOut, q).map { rule.combine(heatmap: $0.heatmap, classifier: $1) }
            out[rule.rawValue] = CandidateCalibration.fit(scores: scores, labels: heldOut.map(\.positive), source: source)
        }
        return out
    }

    /// The series of the RSNA-layout folder `root`, prepared through the cache; those that fail are logged
    /// and left out.
    func prepared(_ root: String, preparation: Preparation) throws -> (cache: PreprocessedCache, uids: [String], modalities: [String: String]) {
        let labels = try RSNATables.readLabels("\(root)/train.csv")
        let cache = PreprocessedCache(root: cacheRoot ?? "\(root)/.willis-cache", preparation: preparation)
        let items = labels.map { (uid: $0.seriesInstanceUID, modality: $0.modality.rawValue) }
        let failed = try cache.build(items, seriesRoot: "\(root)/series", localizers: try TrainingRun.localizers(root),
                                     segmentationRoot: "\(root)/segmentations")
        for f in failed { log("skipped series \(f.uid) of \(root): \(f.error)") }
        let failedUIDs = Set(failed.map(\.uid))
        return (cache, items.map(\.uid).filter { !failedUIDs.contains($0) }.sorted(),
                Dictionary(items.map { ($0.uid, $0.modality) }, uniquingKeysWith: { first, _ in first }))
    }

    /// A series in two of the folders would be trained and scored on, or counted twice, and (with one
    /// `cacheRoot`) prepared once for both: refused.
    static func checkDisjoint(_ folders: [(root: String, uids: [String])]) throws {
        var owner: [String: String] = [:]
        for (root, uids) in folders {
            for uid in uids {
                if let first = owner[uid] {
                    throw DatasetError(file: "\(root)/train.csv", reason: "series \(uid) is also in \(first): the training, validation and positive folders must not share series")
                }
                owner[uid] = root
            }
        }
    }

    @discardableResult
    public func run() throws -> Report {
        let start = now()
        let checkpoint = "\(output)/\(Self.checkpointFileName)"
        // Checked before minutes of preparation, and never overwritten unasked: it may hold hours of steps.
        if !resume, FileManager.default.fileExists(atPath: checkpoint) {
            throw TorchError.invalidArgument("\(checkpoint) holds the steps of a run that paused or stopped: add --resume to go on from it, or remove it to start again")
        }
        if let d = averageDecay, !(0..<1).contains(d) {
            throw TorchError.invalidArgument("the weights' moving average needs a decay from 0 to below 1, not \(d)")
        }
        var predictor: Predictor?
        let preparation: Preparation
        if let detectorWeights {
            let detector = try Predictor(weights: [detectorWeights], device: device)
            if let note = detector.precisionNote { log("warning: the detector's heatmap: \(note)") }
            guard case .detector = detector.network else {
                throw TorchError.safetensors(path: detectorWeights, reason: "not detector weights: the candidate classifier reads a detector's heatmap")
            }
            predictor = detector
            preparation = detector.preparation
        } else {
            guard let given = self.preparation, let dots = dotFilter, dots.count > 0 else {
                throw TorchError.invalidArgument("with no detector, the dot filter is the only source of candidates: it needs their number (dot_candidates) and the preparation ([preprocessing] of the experiment file)")
            }
            guard given.mode == .improved else {
                throw TorchError.invalidArgument("the dot filter's candidates need improved preprocessing (a crop in patient geometry), not \(given.mode.rawValue)")
            }
            guard hardNegativeShare == 0 else {
                throw TorchError.invalidArgument("hard negatives are drawn by the heatmap's value, and with no detector there is no heatmap")
            }
            try given.validate()
            preparation = given
            let search = dots.filter.peakSearch == .eachScale ? " (each scale's maxima, merged)" : ""
            log("no detector: the candidates are each series' \(dots.count) strongest dot-filter maxima\(search) alone")
        }
        let folders = [dataRoot] + (validationRoot.map { [$0] } ?? []) + positiveRoots + furtherDataRoots
        // Checked on the tables, before any folder is prepared: a wrong folder is refused in a second, not
        // after minutes of preparation.
        try Self.checkDisjoint(try folders.map { ($0, try RSNATables.readLabels("\($0)/train.csv").map(\.seriesInstanceUID)) })
        let prepared = try folders.map { try self.prepared($0, preparation: preparation) }
        let (cache, uids, modalities) = prepared[0]
        let minimum = validationRoot == nil ? 2 : 1
        guard uids.count >= minimum else {
            throw DatasetError(file: "\(dataRoot)/train.csv", reason: "\(uids.count) series could be prepared; at least \(minimum) needed"
                + (validationRoot == nil ? " (one is held out)" : ""))
        }
        // The fold is dealt from the whole table, so that it names the same series whichever of them could
        // be prepared: its list is what the out-of-fold predictions must cover.
        let foldMembers = try heldOutFold.map { $0.members(of: try RSNATables.readLabels("\(dataRoot)/train.csv")) }
        let heldOutUIDs = foldMembers ?? (validationRoot == nil ? Set(uids.enumerated().filter { $0.offset % 10 == 0 }.map(\.element)) : [])
        // The prepared series trained on and held out (a fold may also name series that could not be prepared).
        let (trainedUIDs, heldOutPrepared) = (uids.filter { !heldOutUIDs.contains($0) }, uids.filter(heldOutUIDs.contains))
        if let fold = heldOutFold {
            guard !trainedUIDs.isEmpty, !heldOutPrepared.isEmpty || validationRoot != nil else {
                throw DatasetError(file: "\(dataRoot)/train.csv", reason: "\(fold) leaves \(trainedUIDs.count) prepared series to train on and \(heldOutPrepared.count) to score; both are needed (fewer folds, or --validation-data to score on)")
            }
        }
        // Sizes are checked before the long part, reading the peaks.
        try CandidateClassifier.checkSizes(baseFilters: baseFilters, patchSize: patchSize, contextScale: contextScale, depth: depth)
        if locationHead {
            guard !permuteAxes else {
                throw TorchError.invalidArgument("the location head reads which way the vessel under a candidate runs, which permuting the cube's axes would scramble: use one or the other")
            }
            guard locationRadiusMM >= 0, locationRadiusMM.isFinite, locationWeight > 0, locationWeight.isFinite else {
                throw TorchError.invalidArgument("the location head needs a finite radius of at least 0 mm and a positive weight, not \(locationRadiusMM) and \(locationWeight)")
            }
        }
        let all = try examples(uids, cache: cache, predictor: predictor, seriesRoot: "\(dataRoot)/series", modalities: modalities)
        var training = all.filter { !heldOutUIDs.contains($0.uid) }
        let heldOut: [Example]
        if validationRoot != nil {
            heldOut = try examples(prepared[1].uids, cache: prepared[1].cache, predictor: predictor, seriesRoot: "\(folders[1])/series",
                                   modalities: prepared[1].modalities).filter(\.isPeak)
        } else {
            heldOut = all.filter { heldOutUIDs.contains($0.uid) && $0.isPeak }
        }
        let pointsOnly = zip(folders, prepared).dropFirst(validationRoot == nil ? 1 : 2).prefix(positiveRoots.count)
        let extra = try pointsOnly.flatMap { root, folder in
            try examples(folder.uids, cache: folder.cache, predictor: predictor, seriesRoot: "\(root)/series", readingPeaks: false,
                         modalities: folder.modalities)
        }
        let furtherFolders = zip(folders, prepared).suffix(furtherDataRoots.count)
        let further = try furtherFolders.flatMap { root, folder in
            try examples(folder.uids, cache: folder.cache, predictor: predictor, seriesRoot: "\(root)/series", modalities: folder.modalities)
        }
        training += extra + further
        let ignored = training.filter(isIgnored)
        training.removeAll(where: isIgnored)
        if ignoreMM > matchMM {
            log(String(format: "left out of training: %d false candidates %.1f to %.1f mm from a localizer point", ignored.count, matchMM, ignoreMM))
        }
        let positives = training.filter(\.positive), negatives = training.filter { !$0.positive }
        guard !positives.isEmpty, !negatives.isEmpty else {
            throw DatasetError(file: "\(dataRoot)/train_localizers.csv", reason: "the training series give \(positives.count) positive and \(negatives.count) negative candidates; both are needed")
        }
        let heldOutText = heldOutFold.map { "the \(heldOutPrepared.count) prepared series of \($0)" } ?? "\(heldOutPrepared.count) held-out series"
        let scoredOn = validationRoot.map { "the validation folder \($0)" + (heldOutFold.map { ", \($0) left out" } ?? "") } ?? heldOutText
        let trainingSeries = trainedUIDs.count + furtherFolders.map(\.1.uids.count).reduce(0, +)
        let furtherText = furtherDataRoots.isEmpty ? ""
            : "; \(further.filter(\.positive).count) positive and \(further.filter { !$0.positive }.count) negative of them from \(furtherDataRoots.count) further training folder\(furtherDataRoots.count == 1 ? "" : "s")"
        log("candidates: \(positives.count) positive (\(extra.count) of them points of \(positiveRoots.count) positive folders) and \(negatives.count) negative in \(trainingSeries) training series\(furtherText); \(heldOut.filter(\.positive).count) positive of \(heldOut.count) peaks in \(scoredOn)")
        if dotFilter != nil, predictor != nil {
            let (fromDots, scoredDots) = (training.filter { $0.source == .dotFilter }, heldOut.filter { $0.source == .dotFilter })
            log("of these, from the dot filter (away from every heatmap peak): \(fromDots.filter(\.positive).count) positive and \(fromDots.filter { !$0.positive }.count) negative in training; \(scoredDots.filter(\.positive).count) positive of \(scoredDots.count) scored")
        }

        try Torch.manualSeed(seed)
        if locationHead {
            let named = training.filter { $0.location != nil }
            let namedAneurysms = named.filter(\.positive).count, namedOthers = named.count - namedAneurysms
            let radius = String(format: "%.1f", locationRadiusMM)
            log("location head: \(named.count) of \(training.count) training candidates named (\(namedAneurysms) aneurysms by their localizer, \(namedOthers) others by a vessel label within \(radius) mm)")
            guard !named.isEmpty else {
                throw DatasetError(file: "\(dataRoot)/train_localizers.csv", reason: "no training candidate has a location (localizer location or vessel label): the location head has nothing to learn")
            }
            // With vessel labels for few series the head's examples are mostly aneurysms; RESULTS.md stop 36
            // measured a tenth of the series labelled: the naming held, but the stage ranked candidates worse.
            let others = training.filter { !$0.positive }.count
            if namedOthers * 2 < others {
                log("warning: the location head learns the arteries mostly from the aneurysms: \(namedOthers) of \(others) false candidates have a vessel label within \(radius) mm (few series have _cowseg files); with a tenth of the series labelled the head was not shown to help (RESULTS.md, stop 36)")
            }
        }
        let model = try CandidateClassifier(baseFilters: baseFilters, patchSize: patchSize, contextScale: contextScale, depth: depth,
                                            namesLocations: locationHead, device: device)
        func copyOfModel() throws -> CandidateClassifier {
            let copy = try CandidateClassifier(baseFilters: baseFilters, patchSize: patchSize, contextScale: contextScale, depth: depth,
                                               namesLocations: locationHead, device: device)
            try copy.store.copyValues(from: model.store)
            return copy
        }
        // Built after the network, so that the network's initial weights, and every step, are those of a
        // run without it (the generator that initialises weights is not read again).
        let average = try averageDecay.map { _ in try copyOfModel() }
        let half = batchSize / 2
        let sampler = hardNegativeRank > 0
            ? NegativeSampler(weights: NegativeSampler.rankWeights(heatmaps: negatives.map(\.heatmap), series: negatives.map(\.uid), rank: hardNegativeRank),
                              hardShare: hardNegativeShare)
            : NegativeSampler(heatmaps: negatives.map(\.heatmap), hardShare: hardNegativeShare, power: hardNegativePower)
        /// One step's examples and their augmentation.
        func drawBatch(_ rng: inout SplitMix64) -> (chosen: [Example], offsets: [[Int]], flips: [[Bool]], axes: [[Int]]?) {
            // Positives first: with no hard negatives, the generator's draws are those of the runs before the option.
            let drawnPositives = (0..<half).map { _ in positives[Int.random(in: 0..<positives.count, using: &rng)] }
            let drawnNegatives = sampler.draw(batchSize - half, using: &rng).map { negatives[$0] }
            let chosen = drawnPositives + drawnNegatives
            let offsets = chosen.map { _ in (0..<3).map { _ in Int.random(in: 0...(2 * jitter), using: &rng) } }
            let flips = chosen.map { _ in (0..<3).map { _ in Bool.random(using: &rng) } }
            // Drawn after the flips, so that without it the generator's draws are those of the runs before.
            let axes = permuteAxes ? chosen.map { _ in Self.axisOrders[Int.random(in: 0..<Self.axisOrders.count, using: &rng)] } : nil
            return (chosen, offsets, flips, axes)
        }
        /// One step's loss on `net`: the aneurysm loss, and with the location head the naming loss.
        func stepLoss(_ net: CandidateClassifier, _ drawn: (chosen: [Example], offsets: [[Int]], flips: [[Bool]], axes: [[Int]]?)) throws -> Tensor {
            let chosen = drawn.chosen
            let target = try Tensor(chosen.map { $0.positive ? Float(1) : 0 }, shape: [chosen.count], device: device)
            let x = try batch(chosen, offsets: drawn.offsets, flips: drawn.flips, axes: drawn.axes)
            guard locationHead else { return try net(x).binaryCrossEntropyWithLogits(target: target) }
            // A cube mirrored left-right is the other side's artery at the mirrored place: the position's
            // x is negated and the label's side exchanged, as prediction reads the mirror.
            let mirrored = drawn.flips.map { $0[0] }
            let positions = try Tensor(zip(chosen, mirrored).flatMap { e, m in [Float(m ? -e.position[0] : e.position[0]), Float(e.position[1]), Float(e.position[2])] },
                                       shape: [chosen.count, 3], device: device)
            let names = zip(chosen, mirrored).map { e, m in e.location.map { Int64((m ? $0.mirrored : $0).rawValue) } ?? -100 }
            let out = try net.outputs(x, positions: positions)
            var loss = try out.logits.binaryCrossEntropyWithLogits(target: target)
            if let locations = out.locations, names.contains(where: { $0 >= 0 }) {
                let named = try locations.crossEntropy(target: Tensor(names, shape: [chosen.count], device: device), ignoreIndex: -100)
                loss = try loss + named * locationWeight
            }
            return loss
        }

        let optimizer = try Optimizer(.adamW(), parameters: model.store.parameters, learningRate: learningRate)
        var rng = SplitMix64(seed: seed, stream: 7)
        var drawn = (sum: 0.0, count: 0)
        var step = 0
        let run = checkpointRun(positives: positives, negatives: negatives)
        var resumed: CheckpointState?
        if resume {
            if FileManager.default.fileExists(atPath: checkpoint) {
                let (tensors, state) = try TrainingCheckpoint.read(checkpoint, model: Self.checkpointModel, optimizer: optimizer, as: CheckpointState.self)
                let differing = Set(run.keys).union(state.run.keys).filter { run[$0] != state.run[$0] }.sorted()
                guard differing.isEmpty else {
                    throw TorchError.safetensors(path: checkpoint, reason: "written by a run with other settings or candidates (\(differing.map { "\($0): \(state.run[$0] ?? "none") there, \(run[$0] ?? "none") here" }.joined(separator: "; "))): resume it with the same command, or start again without --resume")
                }
                try model.store.load(tensors.filter { !$0.key.hasPrefix(Self.averagePrefix) })
                if let average {
                    try average.store.load(Dictionary(uniqueKeysWithValues: tensors.filter { $0.key.hasPrefix(Self.averagePrefix) }
                        .map { (String($0.key.dropFirst(Self.averagePrefix.count)), $0.value) }))
                }
                (step, rng, drawn) = (state.step, SplitMix64(state: state.rngState), (state.drawnSum, state.drawnCount))
                resumed = state
                log("resumed from \(checkpoint) after step \(state.step) (\(state.bf16 ? "bf16" : "fp32"), as that run chose)")
            } else {
                log("no checkpoint in \(output): starting from the first step")
            }
        }
        let autocast: DType?
        if let resumed {
            // As the run chose, unless this machine runs bf16 many times slower (a checkpoint carried to another).
            let (usable, note) = MixedPrecision.usable(resumed.bf16 ? .bfloat16 : nil, on: device, cpuFlags: cpuFlags)
            if let note { log("warning: \(note)") }
            autocast = usable
        } else if precision == .fastest, MixedPrecision.usable(.bfloat16, on: device, cpuFlags: cpuFlags).note == nil {
            // Copies of the network, and a generator of their own, so that the run's weights and draws are
            // those of a run given the chosen precision.
            var rng = SplitMix64(seed: seed, stream: 11)
            let timingBatch = drawBatch(&rng)
            let times = try Self.medianStepTimes(of: [nil, .bfloat16], warmUp: Self.precisionWarmUpSteps, timed: Self.precisionTimedSteps) { type in
                let copy = try copyOfModel()
                copy.autocast = type
                let optimizer = try Optimizer(.adamW(), parameters: copy.store.parameters, learningRate: learningRate)
                return {
                    try optimizer.zeroGrad()
                    let loss = try stepLoss(copy, timingBatch)
                    try loss.backward()
                    try optimizer.step()
                    // Reading the loss waits for the step to finish, on CUDA as on the CPU.
                    _ = try loss.item()
                }
            }
            autocast = times[1] < times[0] ? .bfloat16 : nil
            log(String(format: "precision fastest: fp32 %.1f ms a step, bf16 %.1f ms (medians of %d steps each, after %d): training in %@",
                       times[0] * 1000, times[1] * 1000, Self.precisionTimedSteps, Self.precisionWarmUpSteps, autocast == nil ? "fp32" : "bf16"))
        } else {
            let requested: DType? = precision == .bf16 ? .bfloat16 : nil
            let (usable, precisionNote) = MixedPrecision.usable(requested, on: device, cpuFlags: cpuFlags)
            if let precisionNote { log("warning: \(precisionNote)") }
            if precision == .fastest { log("precision fastest: this CPU has neither AVX-512 BF16 nor AMX, where bf16 runs many times slower: training in fp32, untimed") }
            autocast = usable
        }
        if autocast != nil { log("training steps under bf16 autocast (the weights, validation and prediction stay float32)") }
        model.autocast = autocast
        func writeCheckpoint() throws {
            let state = CheckpointState(step: step, rngState: rng.state, drawnSum: drawn.sum, drawnCount: drawn.count, bf16: autocast != nil, run: run)
            let tensors = model.store.namedTensors + (average?.store.namedTensors.map { (Self.averagePrefix + $0.0, $0.1) } ?? [])
            try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
            try TrainingCheckpoint.write(tensors, optimizer: optimizer, state: state, model: Self.checkpointModel, to: checkpoint)
        }
        var schedule = CosineSchedule(base: learningRate, totalEpochs: steps, warmupEpochs: min(100, steps / 10))
        var recent: [Double] = []
        let budget = timeLimit.map { StepBudget(limit: $0, most: steps) }
        if let budget {
            let elapsed = now().timeIntervalSince(start)
            guard elapsed < budget.limit else { throw TimeLimitSpent(limit: budget.limit, elapsed: elapsed) }
        }
        var planned = steps
        var timedFrom: Date?
        // This command's steps: a resumed run times its own, and plans from them.
        let firstStep = step
        while step < planned {
            if budget != nil, step - firstStep == StepBudget.untimedSteps { timedFrom = now() }
            if let budget, let timedFrom, StepBudget.plansAfter(step - firstStep) {
                let perStep = now().timeIntervalSince(timedFrom) / Double(step - firstStep - StepBudget.untimedSteps)
                let reserve = StepBudget.scoringReserve(candidates: heldOut.count, readings: average == nil ? 1 : 2,
                                                        secondsPerStep: perStep, batchSize: batchSize)
                let next = budget.plan(done: step, elapsed: now().timeIntervalSince(start), secondsPerStep: perStep, reserve: reserve)
                if step - firstStep == StepBudget.untimedSteps + StepBudget.timedSteps {
                    log(String(format: "time limit %.1f min: %d of %d steps fit (%.3f s a step, %.0f s kept for scoring %d candidates); planned again every %d steps",
                               budget.limit / 60, next, steps, perStep, reserve, heldOut.count, StepBudget.timedSteps))
                }
                // The cosine's end follows the plan; the warm-up (at most 100 steps) is over by the first one.
                (planned, schedule.totalEpochs) = (next, next)
                if step >= planned { break }
            }
            try optimizer.setLearningRate(schedule.step(epoch: step, metric: nil))
            let examples = drawBatch(&rng)
            let drawnNegatives = examples.chosen.suffix(batchSize - half)
            drawn.sum += drawnNegatives.map(\.heatmap).reduce(0, +)
            drawn.count += drawnNegatives.count
            try optimizer.zeroGrad()
            let loss = try stepLoss(model, examples)
            try loss.backward()
            try optimizer.step()
            if let average, let averageDecay { try average.store.moveAverage(towards: model.store, decay: averageDecay) }
            let value = try loss.item()
            guard value.isFinite else {
                // NaN weights would score every candidate NaN: stop before writing any.
                let hint = autocast == nil ? "a lower learning rate" : "--precision fp32 (the steps ran under bf16 autocast)"
                throw TrainingDiverged(place: "train-candidates step \(step + 1) of \(planned)", loss: value, remedy: hint)
            }
            recent.append(value)
            if recent.count == 100 || step == planned - 1 {
                log(String(format: "step %d/%d: loss %.4f", step + 1, planned, recent.reduce(0, +) / Double(recent.count)))
                recent.removeAll()
            }
            progress("training", step + 1, planned)
            step += 1
            if let pauseAfter, step < planned, now().timeIntervalSince(start) >= pauseAfter {
                try writeCheckpoint()
                throw TrainingPaused(step: step, planned: planned, checkpoint: checkpoint, minutes: now().timeIntervalSince(start) / 60)
            }
            if checkpointEvery > 0, step % checkpointEvery == 0, step < planned { try writeCheckpoint() }
        }
        if step < steps, let budget {
            log(String(format: "time limit %.1f min: stopped after %d of %d steps, %.1f min after the start", budget.limit / 60, step, steps,
                       now().timeIntervalSince(start) / 60))
        }

        // Scored as prediction reads the weights: in float32.
        model.autocast = nil
        let truth = heldOut.map(\.positive)
        let heatmapAUC = predictor == nil ? nil : areaUnderROC(scores: heldOut.map(\.heatmap), labels: truth)
        var prior: LocationPrior?
        var priorFolders: [(PreprocessedCache, [String])] = []
        if predictor == nil {
            // Where each location's aneurysms lie in the crop (fitted to every localizer point trained on):
            // what a detector's weights give prediction otherwise.
            priorFolders = [(prepared[0].cache, trainedUIDs)] + (pointsOnly + furtherFolders).map { ($0.1.cache, $0.1.uids) }
            prior = try TrainingRun.fitLocationPrior(priorFolders, preparation: preparation)
            guard prior != nil else {
                throw DatasetError(file: "\(dataRoot)/train_localizers.csv", reason: "no localizer point lies in a prepared crop: no location prior can be fitted")
            }
        } else {
            prior = predictor?.locationPrior
        }
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        let heldOutList = "\(output)/\(Self.heldOutListFileName)"
        if let foldMembers, let fold = heldOutFold {
            try AtomicFile.write(Data(foldMembers.sorted().map { $0 + "\n" }.joined().utf8), to: heldOutList)
            log("\(fold) (\(foldMembers.count) series of \(dataRoot)/train.csv) held out; listed in \(heldOutList) for willis predict --series-list")
        } else if FileManager.default.fileExists(atPath: heldOutList) {
            // An earlier fold's list, beside weights that trained on those series: predicting them would leak.
            try FileManager.default.removeItem(atPath: heldOutList)
            log("removed \(heldOutList), an earlier run's fold (this run holds none out)")
        }
        /// Scores `network` on the held-out candidates, fits its calibrations, and writes it with them to `file`.
        func scoreAndWrite(_ network: CandidateClassifier, averageDecay: Double?, to file: String) throws
            -> (auc: Double?, calibrations: [String: CandidateCalibration], naming: NamingAccuracy?) {
            let (q, named) = try probabilities(network, heldOut)
            let classifierAUC = heldOut.isEmpty ? nil : areaUnderROC(scores: q, labels: truth)
            let calibrations = Self.calibrations(heldOut, q: q, source: validationRoot.map { "peaks of \($0)" } ?? heldOutFold.map { "peaks of \($0)" } ?? "peaks of held-out training series",
                                                 rules: predictor == nil ? [.classifier] : CandidateScoring.allCases)
            let settings = CandidateClassifierSettings(baseFilters: baseFilters, patchSize: patchSize, peaksPerSeries: peaksPerSeries,
                                                       peakThreshold: peakThreshold, preparation: preparation.cacheKey, dotFilter: dotFilter,
                                                       alignsContrast: alignContrast ? true : nil, contextScale: contextScale,
                                                       standsAlone: predictor == nil ? true : nil, namesLocations: locationHead ? true : nil,
                                                       trainedPrecision: autocast == nil ? nil : TrainingConfig.Precision.bf16.rawValue,
                                                       averageDecay: averageDecay, depth: depth == 1 ? nil : depth)
            var metadata = ["willis_model": "candidate_classifier",
                            CandidateClassifierSettings.metadataKey: String(decoding: try JSONEncoder().encode(settings), as: UTF8.self)]
            if !calibrations.isEmpty {
                metadata[CandidateCalibration.metadataKey] = String(decoding: try JSONEncoder().encode(calibrations), as: UTF8.self)
            }
            if predictor == nil, let prior {
                // What a detector's weights give prediction otherwise: how to prepare a series, and the prior.
                metadata[Preparation.metadataKey] = preparation.json
                metadata[LocationPrior.metadataKey] = prior.json
            }
            try network.store.save(to: file, metadata: metadata)
            return (classifierAUC, calibrations, Self.namingAccuracy(heldOut, head: named, prior: prior))
        }
        if predictor == nil, let prior {
            log("location prior fitted to \(prior.components.map(\.count).reduce(0, +)) localizer points of \(priorFolders.map(\.1.count).reduce(0, +)) series")
        }
        let (classifierAUC, calibrations, naming) = try scoreAndWrite(average ?? model, averageDecay: averageDecay,
                                                                      to: "\(output)/candidate-classifier.safetensors")
        var lastStepAUC: Double?
        let lastStepFile = "\(output)/\(Self.lastStepFileName)"
        if average != nil {
            lastStepAUC = try scoreAndWrite(model, averageDecay: nil, to: lastStepFile).auc
        } else if FileManager.default.fileExists(atPath: lastStepFile) {
            // An earlier run's, beside weights it no longer belongs to: a comparison of the two would mislead.
            try FileManager.default.removeItem(atPath: lastStepFile)
            log("removed \(lastStepFile), an earlier run's last-step weights (this run keeps no average)")
        }
        if FileManager.default.fileExists(atPath: checkpoint) {
            // The steps are over and their weights written: a resume from here would train past its schedule.
            try FileManager.default.removeItem(atPath: checkpoint)
        }
        let report = Report(trainingExamples: (positives.count, negatives.count),
                            heldOutPeaks: (truth.filter { $0 }.count, truth.filter { !$0 }.count),
                            heldOutHeatmapAUC: heatmapAUC, heldOutClassifierAUC: classifierAUC, lastStepClassifierAUC: lastStepAUC, calibrations: calibrations,
                            drawnNegativeHeatmap: drawn.count > 0 ? drawn.sum / Double(drawn.count) : 0,
                            naming: naming, stepsRun: step, seconds: now().timeIntervalSince(start))
        func f(_ x: Double?) -> String { x.map { String(format: "%.4f", $0) } ?? "n/a" }
        let hardRule = hardNegativeRank > 0 ? "from each series' \(hardNegativeRank) strongest false peaks" : String(format: "in proportion to its power %g", hardNegativePower)
        if predictor != nil {
            log(String(format: "negatives drawn: mean heatmap %.4f (all %d negatives: %.4f; %.0f %% of each batch's drawn %@)",
                       report.drawnNegativeHeatmap, negatives.count, negatives.map(\.heatmap).reduce(0, +) / Double(negatives.count),
                       hardNegativeShare * 100, hardRule))
        }
        for (rule, c) in calibrations.sorted(by: { $0.key < $1.key }) {
            log(String(format: "calibration of %@ scores: σ(%.3f · logit(s) %+.3f), fitted on %d %@ (%d aneurysms)",
                       rule, c.slope, c.intercept, c.peaks, c.source, c.positives))
        }
        if let n = naming {
            // A share of no candidates (no aneurysm among the scored ones) is NaN: printed as n/a.
            func share(_ x: Double?) -> String { x.flatMap { $0.isNaN ? nil : String(format: "%.3f", $0) } ?? "n/a" }
            log("naming of the scored candidates' arteries: the location head \(share(n.headOnAneurysms)) of \(n.aneurysms) aneurysms, \(share(n.headOnAll)) of all \(n.named) named; the location prior \(share(n.priorOnAneurysms)) and \(share(n.priorOnAll))")
        }
        if let averageDecay {
            log("the weights written are the moving average of the steps' weights (decay \(averageDecay)), AUC \(f(classifierAUC)); the last step's, AUC \(f(lastStepAUC)), are written to \(output)/\(Self.lastStepFileName)")
        }
        if calibrations.isEmpty { log("no calibration: the scored peaks hold one class only, or none; prediction will use the scores as they are") }
        if predictor == nil {
            log("\(validationRoot == nil ? "held-out" : "validation") candidates: AUC of the classifier \(f(classifierAUC)); written to \(output)/candidate-classifier.safetensors")
        } else if validationRoot != nil {
            log("validation peaks: AUC of the heatmap \(f(heatmapAUC)), of the classifier \(f(classifierAUC)); written to \(output)/candidate-classifier.safetensors")
        } else {
            // The detector was usually trained on these series too, so its heatmap ranks their peaks better
            // than it will on new series: a check that training worked, not an estimate of the gain.
            log("held-out peaks: AUC of the heatmap \(f(heatmapAUC)), of the classifier \(f(classifierAUC)) (series the detector may have trained on: --validation-data gives an honest number); written to \(output)/candidate-classifier.safetensors")
        }
        return report
    }
}

/// How a batch's negatives are drawn: a share `hardShare` of them with probability proportional to the
/// heatmap's value at the peak raised to `power`, the rest uniformly. Most false peaks are faint; the few
/// strong ones are those the readout ranks beside the aneurysms, and they decide a negative series'
/// score, so a classifier that sees them more often spends its capacity where the ranking is decided.
public struct NegativeSampler: Sendable {
    public let hardShare: Double
    let hard: WeightedDraw
    var count: Int { hard.weights.count }

    /// The hard share drawn in proportion to each heatmap value to `power` (values below 0 taken as 0).
    public init(heatmaps: [Double], hardShare: Double, power: Double = 1) {
        self.init(weights: heatmaps.map { pow(max($0, 0), power) }, hardShare: hardShare)
    }

    /// The hard share drawn in proportion to `weights`, one per negative.
    public init(weights: [Double], hardShare: Double) {
        self.hardShare = min(max(hardShare, 0), 1)
        hard = WeightedDraw(weights: weights)
    }

    /// Weights that pick out each series' `rank` strongest false peaks: 1 for a negative among the `rank`
    /// highest heatmap values of its own series (`series[i]` names negative i's), 0 for the others. The
    /// heatmap's values are too even across series for a power to find those peaks (RESULTS.md, stop 21);
    /// a series' strongest false peak is what decides its score, whatever its value.
    public static func rankWeights(heatmaps: [Double], series: [String], rank: Int) -> [Double] {
        var weights = [Double](repeating: 0, count: heatmaps.count)
        for members in Dictionary(grouping: heatmaps.indices, by: { series[$0] }).values {
            // Ties keep the earlier peak first, so the choice does not depend on the dictionary's order.
            let ordered = members.sorted { heatmaps[$0] != heatmaps[$1] ? heatmaps[$0] > heatmaps[$1] : $0 < $1 }
            for i in ordered.prefix(max(rank, 0)) { weights[i] = 1 }
        }
        return weights
    }

    /// `n` indices into the negatives: first the uniform ones (so that a share of 0 draws exactly what
    /// uniform sampling drew before this option existed), then the weighted ones. With no weight at
    /// all, every draw is uniform.
    public func draw(_ n: Int, using rng: inout SplitMix64) -> [Int] {
        guard count > 0 else { return [] }
        let weighted = hard.total > 0 ? Int((Double(n) * hardShare).rounded()) : 0
        let out = (0..<(n - weighted)).map { _ in Int.random(in: 0..<count, using: &rng) }
        return out + hard.draw(weighted, using: &rng)
    }
}
