import Anatomy
import AtomicFile
import Foundation
import Preprocessing
import VolumeCore

/// One series' outcome as `willis predict --results` records it and `willis serve` shows it.
public struct SeriesResult: Codable, Sendable, Equatable {
    public enum Status: String, Codable, Sendable { case ok, failed }
    /// The series' folder name under `series/`: its SeriesInstanceUID, or, when it could not be read,
    /// the input folder's name made safe (see `ResultsFolder.key(for:)`).
    public var key: String
    public var seriesInstanceUID: String?
    /// The folder (or file) that was read.
    public var source: String
    /// DICOM Modality (CT, MR) and SeriesDescription.
    public var modality: String?
    public var seriesDescription: String?
    /// An MR's echo time (ms), and how its vessels were read from it (`DotFilter.VesselContrast`): what a
    /// contrast-aligned second stage and the dot filter went by, so a wrong reading can be seen.
    public var echoTimeMS: Double?
    public var vesselContrast: DotFilter.VesselContrast?
    public var status: Status
    /// The 14 probabilities in the competition's column order (`LocationLabel`).
    public var probabilities: [Double]?
    public var error: String?
    public var warnings: [String]
    /// The prepared grid (D, H, W) the evidence files are on.
    public var inputShape: [Int]?
    /// Evidence files in the series' folder.
    public var files: [String]
    /// The detector's strongest candidate points (none for the reference network).
    public var candidates: [Evidence.Candidate]?
    /// ISO 8601, UTC.
    public var predictedAt: String

    public init(key: String, seriesInstanceUID: String?, source: String, modality: String?, seriesDescription: String? = nil,
                echoTimeMS: Double? = nil, vesselContrast: DotFilter.VesselContrast? = nil, status: Status,
                probabilities: [Double]?, error: String?, warnings: [String], inputShape: [Int]?, files: [String],
                candidates: [Evidence.Candidate]?, predictedAt: Date = Date()) {
        self.key = key
        self.seriesInstanceUID = seriesInstanceUID
        self.source = source
        self.modality = modality
        self.seriesDescription = seriesDescription
        self.echoTimeMS = echoTimeMS
        self.vesselContrast = vesselContrast
        self.status = status
        self.probabilities = probabilities
        self.error = error
        self.warnings = warnings
        self.inputShape = inputShape
        self.files = files
        self.candidates = candidates
        self.predictedAt = ISO8601DateFormatter().string(from: predictedAt)
    }

    /// Aneurysm Present, or nil for a failed series.
    public var aneurysmPresent: Double? { probabilities.map { $0[LocationLabel.aneurysmPresent.rawValue] } }

    /// The location with the highest probability.
    public var mostLikelyLocation: (label: LocationLabel, probability: Double)? {
        guard let p = probabilities, p.count == LocationLabel.allCases.count else { return nil }
        return LocationLabel.locations.map { ($0, p[$0.rawValue]) }.max { $0.1 < $1.1 }
    }
}

/// The run that filled a results folder.
public struct RunInfo: Codable, Sendable, Equatable {
    /// Absolute paths of the weights files (an ensemble when several).
    public var weights: [String]
    public var preparation: Preparation
    /// The second stage's weights (an ensemble when several) and how their scores were combined, when
    /// one was used.
    public var candidateClassifiers: [String]?
    public var candidateScoring: String?
    /// The calibrations the combined scores went through, one per classifier, when they did.
    public var candidateCalibrations: [CandidateCalibration]?
    /// The files and options the predictor was made of (absent from run.json files written before it was
    /// recorded; see `predictorSetup`).
    public var setup: PredictorSetup?
    public init(weights: [String], preparation: Preparation, candidateClassifiers: [String]? = nil, candidateScoring: String? = nil,
                candidateCalibrations: [CandidateCalibration]? = nil, setup: PredictorSetup? = nil) {
        self.weights = weights
        self.preparation = preparation
        self.candidateClassifiers = candidateClassifiers
        self.candidateScoring = candidateScoring
        self.candidateCalibrations = candidateCalibrations
        self.setup = setup
    }

    /// How to make the predictor again: the recorded setup, else (older files) the recorded files with
    /// `willis predict`'s default options. Such a file records calibrations only when the scores went
    /// through them.
    public var predictorSetup: PredictorSetup {
        if let setup { return setup }
        var s = PredictorSetup(weights: weights, candidateClassifiers: candidateClassifiers ?? [])
        s.candidateScoring = candidateScoring.flatMap(CandidateScoring.init(rawValue:))
        s.calibrated = candidateClassifiers == nil || candidateCalibrations != nil
        s.candidateEnsemble = nil
        return s
    }
}

/// The folder `willis predict --results DIR` writes and `willis serve --results DIR` reads:
///
///     DIR/submission.csv
///     DIR/run.json                        the weights and preparation that made it
///     DIR/series/<key>/result.json        SeriesResult
///     DIR/series/<key>/identifying.json   PatientName, PatientID, PatientBirthDate (shown only on request)
///     DIR/series/<key>/input.nii.gz, axial.png, coronal.png, sagittal.png
///     DIR/series/<key>/heatmap.nii.gz, candidates.json        (detector weights)
///     DIR/series/<key>/candidate-map.nii.gz, candidates.json  (a second stage with no detector)
public struct ResultsFolder: Sendable {
    public let root: String
    public static let resultFile = "result.json"
    public static let identifyingFile = "identifying.json"

    public init(_ root: String) { self.root = root }

    public var seriesRoot: String { "\(root)/series" }
    public var submissionPath: String { "\(root)/submission.csv" }
    public func folder(for key: String) -> String { "\(seriesRoot)/\(key)" }

    /// Keys name folders and appear in URLs, so they hold only letters, digits, '.', '_' and '-', do not
    /// start with '.', and are at most 128 characters: a UID always qualifies.
    public static func isValidKey(_ key: String) -> Bool {
        !key.isEmpty && key.count <= 128 && !key.hasPrefix(".")
            && key.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) && $0.isASCII || "._-".unicodeScalars.contains($0) }
    }

    /// A valid key for `name`: unchanged when valid, else every other character replaced by '_'.
    public static func key(for name: String) -> String {
        if isValidKey(name) { return name }
        var s = String(String.UnicodeScalarView(name.unicodeScalars.map {
            ($0.isASCII && CharacterSet.alphanumerics.contains($0)) || "._-".unicodeScalars.contains($0) ? $0 : "_"
        }).prefix(128))
        while s.hasPrefix(".") { s = "_" + s.dropFirst() }
        return s.isEmpty ? "_" : s
    }

    /// Writes `result.json` (and the identifying fields, if any) for one series; its evidence files
    /// are written before this by `Evidence.write` into `folder(for:)`.
    public func record(_ result: SeriesResult, identifying: [String: String]? = nil) throws {
        let folder = folder(for: result.key)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        if let identifying, !identifying.isEmpty {
            try AtomicFile.write(try encoder.encode(identifying), to: "\(folder)/\(Self.identifyingFile)")
        }
        try AtomicFile.write(try encoder.encode(result), to: "\(folder)/\(Self.resultFile)")
    }

    /// The result recorded under `key`, or nil when there is none or the key is not valid.
    public func result(_ key: String) -> SeriesResult? {
        guard Self.isValidKey(key), let data = FileManager.default.contents(atPath: "\(folder(for: key))/\(Self.resultFile)") else { return nil }
        return try? JSONDecoder().decode(SeriesResult.self, from: data)
    }

    /// The identifying fields recorded for `key`.
    public func identifying(_ key: String) -> [String: String]? {
        guard Self.isValidKey(key), let data = FileManager.default.contents(atPath: "\(folder(for: key))/\(Self.identifyingFile)") else { return nil }
        return try? JSONDecoder().decode([String: String].self, from: data)
    }

    /// Every result recorded (a folder without a readable `result.json` is skipped).
    public func results() -> [SeriesResult] {
        let keys = ((try? FileManager.default.contentsOfDirectory(atPath: seriesRoot)) ?? []).filter(Self.isValidKey).sorted()
        return keys.compactMap(result)
    }

    public func writeRun(_ info: RunInfo) throws {
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try encoder.encode(info), to: "\(root)/run.json")
    }

    public func run() -> RunInfo? {
        FileManager.default.contents(atPath: "\(root)/run.json").flatMap { try? JSONDecoder().decode(RunInfo.self, from: $0) }
    }
}
