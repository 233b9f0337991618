import Anatomy
import Foundation
import Inference

/// How `willis serve` runs: what it shows, who may reach it, and how much it accepts.
public struct ServeSettings: Sendable {
    /// The results folder to show (see `ResultsFolder`); uploads are predicted into it too.
    public var results: ResultsFolder
    /// Weights for uploads, and a second stage beside them or alone; both empty means the predictor
    /// the results folder's run.json records (`RunInfo.predictorSetup`).
    public var weights: [String] = []
    public var candidateClassifiers: [String] = []
    public var candidateScoring: CandidateScoring?
    public var calibrated = true
    public var host = "127.0.0.1"
    public var port = 8080
    /// A bearer token every request must carry (Authorization header, or the cookie `/login` sets).
    /// Required when `host` is not a loopback address.
    public var token: String?
    /// Show PatientName, PatientID and PatientBirthDate on series pages and in the API.
    public var showPHI = false
    /// Largest upload body, and the most files one upload may hold (zip entries or form parts).
    public var maxUploadBytes = 1 << 30
    public var maxFiles = 2000
    /// Predictions running at once; later uploads wait in order.
    public var concurrentJobs = 1
    /// Uploads waiting beyond which new ones are refused (503).
    public var maxQueuedJobs = 32
    /// Threads loading series for one prediction.
    public var workers = 1
    /// cpu or cuda[:N].
    public var device = "cpu"

    public init(results: String) { self.results = ResultsFolder(results) }

    /// The predictor these settings name, with `willis predict`'s default options; nil when they name none.
    public var setup: PredictorSetup? {
        var s = PredictorSetup(weights: weights, candidateClassifiers: candidateClassifiers)
        guard !s.namesNoFiles else { return nil }
        s.candidateScoring = candidateScoring
        s.calibrated = calibrated
        return s
    }

    public static func isLoopback(_ host: String) -> Bool {
        ["127.0.0.1", "::1", "localhost"].contains(host) || host.hasPrefix("127.")
    }

    /// Refuses settings that would expose the app or cannot work.
    public func validate() throws {
        if !Self.isLoopback(host), (token ?? "").isEmpty {
            throw ServeError.invalidSettings("binding to \(host) exposes the app beyond this machine: give --token")
        }
        if let token, !token.isEmpty, token.count < 16 {
            throw ServeError.invalidSettings("--token must be at least 16 characters")
        }
        guard maxUploadBytes > 0, maxFiles > 0, concurrentJobs > 0, maxQueuedJobs > 0, workers > 0 else {
            throw ServeError.invalidSettings("upload limits, concurrent jobs, queue and workers must be positive")
        }
        guard (1...65535).contains(port) || port == 0 else { throw ServeError.invalidSettings("port \(port) is out of range") }
    }
}

public enum ServeError: Error, CustomStringConvertible, Equatable {
    case invalidSettings(String)
    case badUpload(String)
    case tooManyFiles(Int, limit: Int)
    case tooLarge(Int, limit: Int)
    case queueFull(Int)
    case noWeights

    public var description: String {
        switch self {
        case let .invalidSettings(s): return s
        case let .badUpload(s): return "bad upload: \(s)"
        case let .tooManyFiles(n, limit): return "the upload holds \(n) files; the limit is \(limit)"
        case let .tooLarge(n, limit): return "the upload unpacks to \(n) bytes; the limit is \(limit)"
        case let .queueFull(n): return "\(n) uploads are already waiting; try again later"
        case .noWeights: return "no weights to predict with: start willis serve with --weights or --candidate-classifier, or on a results folder whose run.json names them"
        }
    }
}
