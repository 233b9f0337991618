import Anatomy
import DICOM
import Dataset
import Foundation
import Models
import Preprocessing
import Torch

/// Prediction: a series folder → the volume read correctly → the preparation the weights were trained
/// with → UNet3D → 14 probabilities.
public final class Predictor {
    /// The network the weights are for.
    public enum Network {
        /// The reference UNet3D, with batch norm folded into its convolutions (channels-last on the CPU).
        case reference(FoldedUNet3D)
        /// The detector; predictions average the image and its left-right mirror (outputs side-swapped).
        case detector(Detector)
    }
    /// One network per weights file: a fold ensemble averages their probabilities (and heatmaps). None
    /// for a second stage that stands alone (`init(candidateClassifiers:)`).
    public let networks: [Network]
    public var network: Network? { networks.first }
    /// How series are prepared: from the weights' metadata (`willis train` stores it), else the
    /// reference mode at 64×128×128 (the notebook's own weights carry none).
    public let preparation: Preparation
    /// The grid the outputs (heatmaps, records) live on; the input itself is `preparation.inputShape`.
    public var inputShape: [Int] { preparation.shape }
    /// Detector weights trained on patches: run the network over the input in overlapping windows of
    /// this shape (see `Detector.slidingWindow`); nil runs it on the whole input at once. Defaults to
    /// the patch shape the weights were trained with.
    public var window: [Int]?
    /// Where each location's aneurysms lie in the crop, fitted to the training localizers (from the first
    /// weights file that carries one; `willis train` stores it, `willis location-prior` adds it).
    public let locationPrior: LocationPrior?
    /// How the 14 probabilities are read from the detectors.
    public enum Readout: Equatable, Sendable {
        /// The networks' own 14 outputs: the heatmap pooled over each artery's predicted lumen, and the
        /// global branch for Aneurysm Present.
        case pooled
        /// The heatmap's strongest peaks, named by the location prior (see `CandidateReadout`).
        case candidates(CandidateReadout)
    }
    /// Defaults to `candidates` when the weights are a detector's with a location prior, else `pooled`.
    public var readout: Readout
    /// The detector's second stage (`useCandidateClassifiers(at:scoring:)`): one classifier, or an
    /// ensemble (e.g. one per fold or seed), scores the cube of the prepared image around each of the
    /// heatmap's peaks, and the candidate readout ranks the peaks by `scoring`, each member's score mapped
    /// through its calibration when it carries one for that rule; an ensemble's members are combined as
    /// `combination` says.
    public struct CandidateStage {
        /// How an ensemble's members make the 14 probabilities. Either way the candidates listed in a
        /// series' evidence carry the mean of the members' calibrated scores.
        public enum Combination: String, Codable, Sendable, CaseIterable {
            /// Each member reads the series as it would alone (its calibrated scores, its location head's
            /// names or else the prior's, the readout), and the ensemble's probabilities are the mean of the
            /// members' 14. RESULTS.md stop 44: two members gave +0.011 held out over `candidates`.
            case series
            /// Each candidate's probability is the mean of the members' calibrated scores, its names the
            /// mean of the members' location heads, and the readout reads the candidates once.
            case candidates
        }
        public struct Member {
            public let path: String
            public let classifier: CandidateClassifier
            public let settings: CandidateClassifierSettings
            public let calibration: CandidateCalibration?
        }
        /// What a member reads as the candidates of a series: the heatmap's strongest peaks above a
        /// threshold, and the dot filter's candidates away from them, as it was trained.
        public struct CandidateSet: Hashable, Sendable {
            public var peaks: Int
            public var threshold: Float
            public var dots: DotFilterCandidates?
            public init(_ s: CandidateClassifierSettings) { (peaks, threshold, dots) = (s.peaksPerSeries, s.peakThreshold, s.dotFilter) }
            /// For messages: "24 peaks above 0.02 and 30 dot-filter candidates (16 mm deep, 4 mm apart, acrossScales)";
            /// without `heatmap` (a stage with no detector), the dot filter's alone.
            public func text(heatmap: Bool = true) -> String {
                let filter = dots.map { "\($0.count) dot-filter candidates (\($0.depthMM) mm deep, \($0.separationMM) mm apart, \($0.filter.peakSearch.rawValue))" }
                guard heatmap else { return filter ?? "no candidates" }
                return "\(peaks) peaks above \(threshold)" + (filter.map { " and " + $0 } ?? "")
            }
        }
        public let members: [Member]
        public var scoring: CandidateScoring
        /// Which views of each candidate's cube the members read (`CandidateClassifier.read`).
        public var flips: CandidateClassifier.TestTimeFlips = .mirror
        public var combination: Combination = .series
        /// The first member's settings: its peaks per series, their threshold and its dot-filter
        /// candidates, which every member shares when `readsOneCandidateSet`.
        public var settings: CandidateClassifierSettings { members[0].settings }
        /// The candidate sets the members read, each once, in the members' order.
        public var candidateSets: [CandidateSet] {
            members.map { CandidateSet($0.settings) }.reduce(into: []) { sets, set in if !sets.contains(set) { sets.append(set) } }
        }
        /// Whether every member reads the same candidates. Members that do not (other peak counts or
        /// dot-filter settings) can only be combined series by series: each reads its own candidates.
        public var readsOneCandidateSet: Bool { candidateSets.count == 1 }
        public var calibrations: [CandidateCalibration?] { members.map(\.calibration) }
        /// Trained with no detector: its candidates are the dot filter's alone, and no heatmap is read.
        public var standsAlone: Bool { settings.standsAlone == true }
        /// The members with a location head, which name the candidates instead of the location prior.
        public var namers: [Member] { members.filter(\.classifier.namesLocations) }
        /// How the readout names the candidates, for a log line.
        public var naming: String {
            if combination == .series, members.count > 1, !namers.isEmpty {
                return namers.count == members.count ? "each classifier's location head" : "each classifier's location head, or the weights' location prior for one with none"
            }
            return namers.isEmpty ? "the weights' location prior" : "the location head of \(namers.map(\.path).joined(separator: ", "))"
        }
        /// Why `combination` cannot join these members, or nil when it can: the mean score per candidate
        /// needs one set of candidates.
        public var combinationError: String? {
            guard combination == .candidates, !readsOneCandidateSet else { return nil }
            return "the mean score per candidate (--candidate-ensemble candidates) needs classifiers that read the same candidates, and these read "
                + candidateSets.map { $0.text(heatmap: !standsAlone) }.joined(separator: "; ") + ": combine them series by series (--candidate-ensemble series)"
        }
        /// How an ensemble's members are combined, for a log line; empty for one member.
        public var combinationText: String {
            guard members.count > 1 else { return "" }
            return combination == .series ? ", the mean of \(members.count) classifiers' readings of the series"
                : ", the mean of \(members.count) classifiers' scores of each candidate"
        }
    }
    public var candidateStage: CandidateStage?
    let device: Device
    /// Candidates listed in a series' evidence: those the readout used, and at least 5.
    public var candidateCount: Int {
        if let stage = candidateStage {
            // Members that read other candidates add theirs.
            return max(5, stage.candidateSets.map { (stage.standsAlone ? 0 : $0.peaks) + ($0.dots?.count ?? 0) }.reduce(0, +))
        }
        if case let .candidates(r) = readout { return max(5, r.count) }
        return 5
    }

    /// Adds the candidate classifier in `path` (from `willis train-candidates`) as the detector's second
    /// stage; see `useCandidateClassifiers(at:scoring:calibrated:)`.
    public func useCandidateClassifier(at path: String, scoring: CandidateScoring, calibrated: Bool = true) throws {
        try useCandidateClassifiers(at: [path], scoring: scoring, calibrated: calibrated)
    }

    /// Adds the candidate classifiers in `paths` (from `willis train-candidates`) as the detector's second
    /// stage, an ensemble when several. Each must have been trained on images prepared as these weights
    /// prepare them; members that read other candidates (peak count and threshold, dot-filter settings)
    /// each read their own, and join series by series only (`CandidateStage.combinationError`); the stage needs the candidate
    /// readout (weights with a location prior). With `calibrated`, each member's scores are mapped through
    /// the calibration that `willis train-candidates` fitted for `scoring`: every member must then carry
    /// one, or none may (calibrated and raw scores do not average into anything meaningful).
    public func useCandidateClassifiers(at paths: [String], scoring: CandidateScoring, calibrated: Bool = true) throws {
        guard case .candidates = readout else {
            throw TorchError.invalidArgument("a candidate classifier re-scores the candidate readout's peaks: the detector weights need a location prior (willis location-prior)")
        }
        guard !paths.isEmpty else { throw TorchError.invalidArgument("no candidate classifier given") }
        let members = try paths.map { try loadCandidateClassifier($0, scoring: scoring, calibrated: calibrated) }
        let first = members[0]
        for member in members {
            // A stage trained with no detector never saw a heatmap peak, and one trained on a detector's
            // peaks has no candidates without it.
            if member.settings.standsAlone == true, !networks.isEmpty {
                throw TorchError.safetensors(path: member.path, reason: "trained with no detector, on the dot filter's candidates alone: use it without detector weights (willis predict --candidate-classifier alone)")
            }
            if member.settings.standsAlone != true, networks.isEmpty {
                throw TorchError.safetensors(path: member.path, reason: "a second stage of a detector's peaks: give the detector weights too (willis predict --weights)")
            }
        }
        if networks.isEmpty, scoring != .classifier {
            throw TorchError.invalidArgument("with no detector there is no heatmap: the candidates can only be scored by the classifier (--candidate-scoring classifier), not \(scoring.rawValue)")
        }
        // Members may read other candidates (peak counts, dot-filter settings): each then reads its own,
        // and only the series-by-series combination can join them (`CandidateStage.combinationError`).
        for member in members.dropFirst() {
            guard (member.calibration == nil) == (first.calibration == nil) else {
                let (with, without) = member.calibration == nil ? (first, member) : (member, first)
                throw TorchError.safetensors(path: without.path, reason: "carries no calibration for \(scoring.rawValue), but \(with.path) does: train it again with willis train-candidates, or use every classifier's raw scores (--uncalibrated)")
            }
        }
        candidateStage = CandidateStage(members: members, scoring: scoring)
    }

    func loadCandidateClassifier(_ path: String, scoring: CandidateScoring, calibrated: Bool) throws -> CandidateStage.Member {
        let file = try SafeTensorsFile(path: path)
        guard file.metadata["willis_model"] == "candidate_classifier", let json = file.metadata[CandidateClassifierSettings.metadataKey],
              let settings = try? JSONDecoder().decode(CandidateClassifierSettings.self, from: Data(json.utf8)) else {
            throw TorchError.safetensors(path: path, reason: "not candidate classifier weights (willis train-candidates writes them)")
        }
        guard settings.preparation == preparation.cacheKey else {
            throw TorchError.safetensors(path: path, reason: "trained on images prepared as \(settings.preparation), but the detector prepares them as \(preparation.cacheKey)")
        }
        guard settings.peaksPerSeries > 0, settings.peakThreshold.isFinite else {
            throw TorchError.safetensors(path: path, reason: "its settings ask for \(settings.peaksPerSeries) peaks above \(settings.peakThreshold)")
        }
        if let dots = settings.dotFilter, !(dots.count >= 0 && dots.count <= 1000 && dots.depthMM.isFinite && dots.depthMM >= 0 && dots.separationMM.isFinite && dots.separationMM >= 0) {
            throw TorchError.safetensors(path: path, reason: "its settings ask for \(dots.count) dot-filter candidates \(dots.depthMM) mm deep, \(dots.separationMM) mm apart")
        }
        let classifier: CandidateClassifier
        do {
            classifier = try CandidateClassifier(baseFilters: settings.baseFilters, patchSize: settings.patchSize, contextScale: settings.contextScale,
                                                 depth: settings.depth ?? 1, namesLocations: settings.namesLocations == true, device: device)
        } catch let error as TorchError {
            throw TorchError.safetensors(path: path, reason: "its settings describe no classifier that can be built: \(error)")
        }
        var tensors: [String: Tensor] = [:]
        for name in file.names where !name.hasPrefix("__") { tensors[name] = try file.tensor(name) }
        try classifier.store.load(tensors)
        classifier.store.isTraining = false
        var calibration: CandidateCalibration?
        if calibrated, let json = file.metadata[CandidateCalibration.metadataKey] {
            guard let all = try? JSONDecoder().decode([String: CandidateCalibration].self, from: Data(json.utf8)) else {
                throw TorchError.safetensors(path: path, reason: "its calibration (\(CandidateCalibration.metadataKey)) cannot be read")
            }
            calibration = all[scoring.rawValue]
            guard calibration.map({ $0.slope > 0 && $0.slope.isFinite && $0.intercept.isFinite }) ?? true else {
                throw TorchError.safetensors(path: path, reason: "its calibration for \(scoring.rawValue) does not keep the scores' order")
            }
        }
        return CandidateStage.Member(path: path, classifier: classifier, settings: settings, calibration: calibration)
    }

    /// A classifier's probability for the cube of the prepared `input` around each peak (with its context
    /// cube, when the classifier takes one): the mean of the cube's and its left-right mirror's (of all
    /// eight flips' with the stage's `flips` all); and,
    /// from a classifier with the location head, each peak's 13 location probabilities, read likewise
    /// (`CandidateClassifier.read`). A classifier trained on aligned contrast needs the
    /// series' `contrast`, and negates the cubes of a dark-vessel one as training did.
    func classify(_ input: [Float], _ peaks: [HeatmapPeak], _ member: CandidateStage.Member,
                  contrast: DotFilter.VesselContrast?) throws -> (q: [Double], locations: [[Double]]?) {
        guard !peaks.isEmpty else { return ([], member.classifier.namesLocations ? [] : nil) }
        let size = member.settings.patchSize, n = preparation.inputSubdivision, channels = member.classifier.inputChannels
        var darkVessels = false
        if member.settings.alignsContrast == true {
            guard let contrast else {
                throw TorchError.invalidArgument("\(member.path) was trained on contrast-aligned cubes: it needs the series' modality to score candidates")
            }
            darkVessels = contrast == .darkMR
        }
        let cubes = peaks.flatMap { peak in
            CandidateClassifier.aligned(CandidateClassifier.view(input, shape: preparation.inputShape,
                                                                 centre: CandidateClassifier.sampleCentre(gridVoxel: peak.voxel.map(Double.init), subdivision: n),
                                                                 size: size, contextScale: member.settings.contextScale),
                                        darkVessels: darkVessels)
        }
        return try Torch.withNoGrad {
            let x = try Tensor(cubes, shape: [peaks.count, channels, size, size, size], device: device)
            let grid = preparation.cropGrid
            let positions = peaks.map { grid.position(i: Double($0.voxel[0]), j: Double($0.voxel[1]), k: Double($0.voxel[2])) }
            return try member.classifier.read(x, positions: positions, flips: candidateStage?.flips ?? .mirror)
        }
    }

    /// A second stage that stands alone (`willis train-candidates` with no detector): the classifiers in
    /// `paths` score each series' dot-filter candidates, named by the location prior the first one
    /// carries, on series prepared as its weights say.
    public init(candidateClassifiers paths: [String], scoring: CandidateScoring = .classifier, calibrated: Bool = true, device: Device = .cpu) throws {
        guard let first = paths.first else { throw TorchError.invalidArgument("no candidate classifier given") }
        let file = try SafeTensorsFile(path: first)
        guard let json = file.metadata[Preparation.metadataKey], let prepared = try? Preparation.from(json: json),
              let prior = try Self.locationPrior(file, path: first) else {
            throw TorchError.safetensors(path: first, reason: "carries no preparation and location prior: a detector's second stage, which needs the detector weights too (willis predict --weights)")
        }
        networks = []
        preparation = prepared
        window = nil
        try preparation.validate()
        guard preparation.mode == .improved else {
            throw TorchError.safetensors(path: first, reason: "prepares series in \(preparation.mode.rawValue) mode; the dot filter's candidates need improved mode")
        }
        self.device = device
        locationPrior = prior
        readout = .candidates(CandidateReadout(prior: prior))
        try useCandidateClassifiers(at: paths, scoring: scoring, calibrated: calibrated)
    }

    /// Loads weights saved by `willis train` or exported from the notebook (state_dict names);
    /// the base width is read from `enc1.0.weight`. `preparation` overrides what the file says.
    public convenience init(weights path: String, preparation override: Preparation? = nil, device: Device = .cpu) throws {
        try self.init(weights: [path], preparation: override, device: device)
    }

    /// Several weights files (e.g. one per fold), which must prepare series the same way.
    public init(weights paths: [String], preparation override: Preparation? = nil, device: Device = .cpu) throws {
        guard let first = paths.first else { throw TorchError.invalidArgument("no weights given") }
        var networks: [Network] = []
        var preparations: [Preparation] = []
        var windows: [[Int]?] = []
        var prior: LocationPrior?
        for path in paths {
            let (network, preparation, patch, locationPrior) = try Self.load(path, device: device)
            networks.append(network)
            preparations.append(override ?? preparation)
            windows.append(patch)
            prior = prior ?? locationPrior
        }
        if let different = zip(paths, preparations).first(where: { $0.1 != preparations[0] }) {
            throw TorchError.invalidArgument("\(different.0) prepares series differently from \(first) (\(different.1.cacheKey) vs \(preparations[0].cacheKey)); an ensemble needs one preparation")
        }
        self.networks = networks
        preparation = preparations[0]
        window = windows[0].flatMap { w in zip(w, preparations[0].shape).allSatisfy { $0 <= $1 } ? w : nil }
        try preparation.validate()
        if networks.contains(where: { if case .detector = $0 { return true } else { return false } }), preparation.mode != .improved {
            throw TorchError.invalidArgument("detector weights need improved preprocessing, not \(preparation.mode.rawValue)")
        }
        self.device = device
        locationPrior = prior
        readout = prior.map { .candidates(CandidateReadout(prior: $0)) } ?? .pooled
        // What the weights were trained with, checked against this device (`MixedPrecision.usable`).
        autocast = autocast
    }

    /// The patch shape and precision detector weights were trained with (their `willis_detector` metadata).
    static func trainingSettings(_ file: SafeTensorsFile) -> (patch: [Int]?, autocast: DType?, coordinateInput: Bool) {
        struct Settings: Decodable { var patchShape: [Int]?; var precision: String?; var coordinateInput: Bool? }
        guard let json = file.metadata["willis_detector"],
              let settings = try? JSONDecoder().decode(Settings.self, from: Data(json.utf8)) else { return (nil, nil, false) }
        return (settings.patchShape, settings.precision == "bf16" ? .bfloat16 : nil, settings.coordinateInput ?? false)
    }

    /// How the detectors pool their heatmap into the 13 locations (default: `lumen`, as trained).
    public var locationPooling: Detector.LocationPooling {
        get {
            for case let .detector(net) in networks { return net.locationPooling }
            return .lumen
        }
        set { for case let .detector(net) in networks { net.locationPooling = newValue } }
    }

    /// Mixed precision of the detectors' convolutions (see `Detector.autocast`); defaults to what the
    /// first weights were trained with. bf16 on a CPU without native bfloat16 runs as float32 instead
    /// (`MixedPrecision.usable`), and `precisionNote` says so.
    public var autocast: DType? {
        get {
            for case let .detector(net) in networks { return net.autocast }
            return nil
        }
        set {
            let chosen = MixedPrecision.usable(newValue, on: device, cpuFlags: cpuFlags)
            precisionNote = networks.contains(where: { if case .detector = $0 { return true } else { return false } }) ? chosen.note : nil
            for case let .detector(net) in networks { net.autocast = chosen.autocast }
        }
    }

    /// Why the detectors run another precision than asked for or trained with; nil when they do not.
    public private(set) var precisionNote: String?
    /// The CPU's feature flags, which decide whether bf16 runs natively; `autocast` reads them when set.
    public var cpuFlags: Set<String>? = HostCPU.flags

    /// The location prior `file` (at `path`) carries; nil when it carries none.
    static func locationPrior(_ file: SafeTensorsFile, path: String) throws -> LocationPrior? {
        try file.metadata[LocationPrior.metadataKey].map {
            do { return try LocationPrior.from(json: $0) } catch {
                throw TorchError.safetensors(path: path, reason: "its location prior cannot be read: \(error)")
            }
        }
    }

    /// The network in `path`, the preparation it was trained with and, for detector weights, the patch
    /// shape they were trained on (their default sliding window) and their location prior, if any.
    static func load(_ path: String, device: Device) throws -> (Network, Preparation, patch: [Int]?, prior: LocationPrior?) {
        let network: Network
        var prior: LocationPrior?
        let file = try SafeTensorsFile(path: path)
        let trained = trainingSettings(file)
        var tensors: [String: Tensor] = [:]
        for name in file.names where !name.hasPrefix("__") { tensors[name] = try file.tensor(name) }
        let preparation = try file.metadata[Preparation.metadataKey].map { try Preparation.from(json: $0) } ?? Preparation()
        if file.metadata["willis_model"] == "detector" {
            guard let stem = file.entry("stem.conv1.weight"), stem.shape.count == 5 else {
                throw TorchError.safetensors(path: path, reason: "detector weights without stem.conv1.weight")
            }
            // The stem's input channels: the image (subdivision³ samples per voxel), the modality
            // one-hot if any, the coordinates if the weights' settings say so.
            let coordinates = trained.coordinateInput
            let n = preparation.inputSubdivision
            let modalities = stem.shape[1] - n * n * n - (coordinates ? 3 : 0)
            guard modalities >= 0 else {
                throw TorchError.safetensors(path: path, reason: "stem.conv1.weight takes \(stem.shape[1]) channels, too few for the image samples and coordinates its settings name")
            }
            let net = try Detector(baseFilters: stem.shape[0], modalityChannels: modalities, coordinateInput: coordinates,
                                   inputSubdivision: n, device: device)
            try net.store.load(tensors)
            net.store.isTraining = false
            net.autocast = trained.autocast
            network = .detector(net)
            prior = try locationPrior(file, path: path)
        } else {
            guard let first = file.entry("enc1.0.weight"), first.shape.count == 5 else {
                throw TorchError.safetensors(path: path, reason: "no enc1.0.weight: not UNet3D weights")
            }
            let model = try UNet3D(baseFilters: first.shape[0], device: device)
            try model.store.load(tensors)
            model.store.isTraining = false
            network = .reference(try model.foldedForInference())
        }
        return (network, preparation, trained.patch, prior)
    }

    /// Probabilities for the one series under `folder` (or a multi-frame file).
    public func predict(series folder: String) throws -> (uid: String, probabilities: [Double], warnings: [String]) {
        try predict(SeriesLoader().load(folder))
    }

    /// Probabilities for a series already read.
    public func predict(_ series: Series) throws -> (uid: String, probabilities: [Double], warnings: [String]) {
        let (input, record) = prepareWithRecord(series)
        let dots = dotCandidates(series, record: record)
        let result = try infer(input, heatmap: false, dotCandidates: dots, contrast: DotFilter.VesselContrast(series))
        return (series.seriesInstanceUID, result.probabilities, series.warnings + Self.warnings(input: input, record: record) + warnings(dotCandidates: dots))
    }

    /// A second stage with no detector and no dot-filter candidate in a series has nothing to score: the
    /// prediction is still made (every probability 0), and this says why.
    public func warnings(dotCandidates: DotCandidates) -> [String] {
        guard candidateStage?.standsAlone == true, dotCandidates.values.allSatisfy(\.isEmpty) else { return [] }
        return ["the dot filter found no candidate inside the head (no vessels in view?): the second stage had nothing to score, so every probability is 0"]
    }

    /// The dot filter's candidates of `series` as voxels of its prepared grid (`record`), when the second
    /// stage was trained with them (`CandidateClassifierSettings.dotFilter`); else none. CPU work on the
    /// series' own voxels (about 1.5 s for a medium series), safe on any thread.
    public func dotCandidates(_ series: Series, record: PreparationRecord?) -> DotCandidates {
        guard let stage = candidateStage, let record else { return [:] }
        var found: DotCandidates = [:]
        for dots in stage.candidateSets.compactMap(\.dots) where dots.count > 0 && found[dots] == nil {
            found[dots] = dots.filter.candidates(series.volume, contrast: DotFilter.VesselContrast(series), count: dots.count, depthMM: dots.depthMM,
                                                 on: record.output, shape: preparation.shape)
        }
        return found
    }

    /// The dot filter's candidates of a series (grid voxels, strongest first) for each dot-filter
    /// setting the second stage's members were trained with.
    public typealias DotCandidates = [DotFilterCandidates: [[Int]]]

    /// The network input for `series` (CPU work only; safe on any thread).
    public func prepare(_ series: Series) -> [Float] {
        preparation.prepare(series.volume, modality: series.modality).input
    }

    /// The input and, in improved mode, where its voxels lie in the patient.
    public func prepareWithRecord(_ series: Series) -> (input: [Float], record: PreparationRecord?) {
        preparation.prepare(series.volume, modality: series.modality)
    }

    /// What is odd about a prepared input, as warnings (the prediction is still made): a crop that lies
    /// largely outside the series, or an input with nothing in view (constant or not finite).
    public static func warnings(input: [Float], record: PreparationRecord?) -> [String] {
        var out: [String] = []
        if let record, record.outsideFraction > 0.25 {
            out.append(String(format: "%.0f %% of the prepared crop lies outside the series (filled with its background)", record.outsideFraction * 100))
        }
        if let warning = record?.intensityWarning { out.append(warning) }
        var lo = Float.infinity, hi = -Float.infinity, finite = true
        for v in input {
            if !v.isFinite { finite = false; break }
            lo = min(lo, v)
            hi = max(hi, v)
        }
        if !finite { out.append("the prepared input holds values that are not finite") } else if hi - lo < 1e-6 {
            out.append("nothing in view: the prepared input is constant")
        }
        return out
    }

    /// The 14 probabilities for one prepared input.
    public func infer(_ input: [Float]) throws -> [Double] { try infer(input, heatmap: false).probabilities }

    /// The 14 probabilities and, for the detector when asked, its aneurysm probability per voxel of the
    /// prepared grid. The detector averages the image and its left-right mirror: the mirror's outputs
    /// with Left and Right exchanged, its heatmap mirrored back.
    /// With the candidate readout, `peaks` are the candidates it read, strongest first (scored by the
    /// candidate classifier when there is one; for an ensemble, the mean of the members' calibrated
    /// scores, whichever `CandidateStage.Combination` makes the probabilities; members that read other
    /// candidates list every member's, each with the mean of the scores of those that read it). A second
    /// stage trained with the dot filter's candidates also scores `dotCandidates` (grid voxels per
    /// dot-filter setting, from `dotCandidates(_:record:)`) beside the peaks; one
    /// trained on aligned contrast needs the series' `contrast` (`DotFilter.VesselContrast(series)`).
    public func infer(_ input: [Float], heatmap: Bool, dotCandidates: DotCandidates = [:], contrast: DotFilter.VesselContrast? = nil) throws -> (probabilities: [Double], heatmap: [Float]?, peaks: [HeatmapPeak]?) {
        let x = try Tensor(input, shape: [1, 1] + preparation.inputShape, device: device)
        var probabilities = [Double](repeating: 0, count: 14)
        var heat: [Float]?
        var candidates: CandidateReadout?
        if case let .candidates(r) = readout { candidates = r }
        for network in networks {
            let (p, h) = try infer(x, network, heatmap: heatmap || candidates != nil)
            for c in 0..<14 { probabilities[c] += p[c] / Double(networks.count) }
            if let h {
                let scale = Float(networks.count)
                heat = heat.map { zip($0, h).map { $0 + $1 / scale } } ?? h.map { $0 / scale }
            }
        }
        var peaks: [HeatmapPeak]?
        if let candidates {
            guard heat != nil || candidateStage?.standsAlone == true else {
                throw TorchError.invalidArgument("the candidate readout needs detector weights (a heatmap)")
            }
            var found: [HeatmapPeak]
            var seriesProbabilities: [Double]?
            if let stage = candidateStage {
                if let problem = stage.combinationError { throw TorchError.invalidArgument(problem) }
                // A member's candidates: the heatmap's peaks and the dot filter's, as it was trained to read
                // them. A stage that stands alone has no heatmap: its candidates are the dot filter's, each
                // at heatmap value 0.
                func candidatesOf(_ set: CandidateStage.CandidateSet) -> [HeatmapPeak] {
                    var found = heat.map { HeatmapPeak.find($0, shape: preparation.shape, count: set.peaks, threshold: set.threshold) } ?? []
                    if let dots = set.dots {
                        found = HeatmapPeak.adding(Array((dotCandidates[dots] ?? []).prefix(dots.count)), source: .dotFilter, to: found, heatmap: heat ?? [],
                                                   shape: preparation.shape, spacing: preparation.spacing, separationMM: dots.separationMM)
                    }
                    return found
                }
                // Each member's own reading of the series, as it would predict alone.
                func reading(_ member: CandidateStage.Member, _ peaks: [HeatmapPeak], _ r: (q: [Double], locations: [[Double]]?)) -> (peaks: [HeatmapPeak], probabilities: [Double]) {
                    var own = peaks
                    if let l = r.locations, l.count == own.count { for i in own.indices { own[i].locations = l[i] } }
                    own = stage.scoring.rescore(own, classifiers: [r.q], calibrations: [member.calibration])
                    return (own, candidates.probabilities(own, grid: preparation.cropGrid))
                }
                if stage.readsOneCandidateSet {
                    found = candidatesOf(CandidateStage.CandidateSet(stage.settings))
                    let read = try stage.members.map { try classify(input, found, $0, contrast: contrast) }
                    if stage.combination == .series, stage.members.count > 1 {
                        let each = zip(stage.members, read).map { reading($0, found, $1).probabilities }
                        seriesProbabilities = (0..<probabilities.count).map { c in each.map { $0[c] }.reduce(0, +) / Double(each.count) }
                    }
                    // The members with a location head name the candidates (their mean); without one, the prior does.
                    let namers = read.compactMap(\.locations).filter { $0.count == found.count }
                    if !namers.isEmpty {
                        for i in found.indices {
                            found[i].locations = (0..<LocationLabel.locations.count).map { l in namers.map { $0[i][l] }.reduce(0, +) / Double(namers.count) }
                        }
                    }
                    found = stage.scoring.rescore(found, classifiers: read.map(\.q), calibrations: stage.calibrations)
                } else {
                    // Members that read other candidates: each reads its own; the evidence lists every
                    // member's candidates, one that several read with the mean of their scores and names.
                    let each = try stage.members.map { member in
                        let own = candidatesOf(CandidateStage.CandidateSet(member.settings))
                        return reading(member, own, try classify(input, own, member, contrast: contrast))
                    }
                    seriesProbabilities = (0..<probabilities.count).map { c in each.map { $0.probabilities[c] }.reduce(0, +) / Double(each.count) }
                    found = HeatmapPeak.mean(each.map(\.peaks))
                }
            } else {
                found = HeatmapPeak.find(heat ?? [], shape: preparation.shape, count: candidates.count, threshold: candidates.threshold)
            }
            probabilities = seriesProbabilities ?? candidates.probabilities(found, grid: preparation.cropGrid)
            peaks = found
        }
        return (probabilities, heatmap ? heat : nil, peaks)
    }

    func infer(_ x: Tensor, _ network: Network, heatmap: Bool) throws -> (probabilities: [Double], heatmap: [Float]?) {
        switch network {
        case let .reference(folded):
            return (try folded(x).floats().map(Double.init), nil)
        case let .detector(net):
            guard net.modalityChannels == 0 else {
                throw TorchError.invalidArgument("these detector weights take the modality as input; prediction from DICOM alone cannot give it")
            }
            // Coordinates are those of the grid's voxels whatever the image: the mirror is a head whose
            // left lies where the right was.
            let spatial = inputShape
            let c = net.coordinateChannels == 0 ? nil
                : try Detector.coordinates(origin: [0, 0, 0], shape: spatial, grid: spatial, spacing: preparation.spacing, device: device)
            return try Torch.withNoGrad {
                let flipped = try x.flip([4])
                let a = try window.map { try net.slidingWindow(x, coordinates: c, window: $0) } ?? net(x, coordinates: c)
                let b = try window.map { try net.slidingWindow(flipped, coordinates: c, window: $0) } ?? net(flipped, coordinates: c)
                let direct = try a.logits.sigmoid().floats(), mirrored = try b.logits.sigmoid().floats()
                let p = LocationLabel.allCases.map { l in (Double(direct[l.rawValue]) + Double(mirrored[l.mirrored.rawValue])) / 2 }
                guard heatmap else { return (p, nil) }
                return (p, try ((a.heatmap.sigmoid() + b.heatmap.sigmoid().flip([4])) * 0.5).floats())
            }
        }
    }
}
