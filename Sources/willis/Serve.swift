import ArgumentParser
import Foundation
import Hummingbird
import Server
import Torch

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The triage web app: a worklist ranked by Aneurysm Present, series pages with the evidence, uploads, a JSON API.",
        discussion: """
            RESULTS is a folder written by `willis predict --results` or `willis demo` (its results/ folder). \
            Uploaded series are predicted with --weights and --candidate-classifier when given (willis predict's \
            other options at their defaults), else as RESULTS/run.json records that willis predict made RESULTS, \
            and recorded in RESULTS. Binds to 127.0.0.1 unless told otherwise; any other address needs --token, \
            which every request must then carry (Authorization: Bearer TOKEN; a browser opens /login?token=TOKEN once).
            """)

    @OptionGroup var engineOptions: EngineOptions

    @Option(help: "Results folder to show and to record uploads in.") var results: String = "willis-demo/results"
    @Option(help: "Weights for uploads (repeat for an ensemble; default: the predictor RESULTS/run.json records).") var weights: [String] = []
    @Option(help: ArgumentHelp("A second stage for uploads, beside --weights or, trained with no detector, alone (repeat for an ensemble; as willis predict takes it).",
                               valueName: "candidate-classifier.safetensors"))
    var candidateClassifier: [String] = []
    @Option(help: "With --candidate-classifier: classifier, geometric-mean or heatmap (default: geometric-mean with --weights, classifier without).")
    var candidateScoring: String?
    @Flag(help: "With --candidate-classifier: its scores as they are, not calibrated.") var uncalibrated = false
    @Option(help: "Address to bind.") var host: String = "127.0.0.1"
    @Option(help: "Port (0 picks a free one).") var port: Int = 8080
    @Option(help: "Bearer token required on every request (at least 16 characters; required off loopback). Default: $WILLIS_TOKEN.")
    var token: String?
    @Flag(help: "Show PatientName, PatientID and PatientBirthDate (hidden by default).") var showPHI = false
    @Option(help: "Largest upload in MB.") var maxUploadMb: Int = 1024
    @Option(help: "Most files in one upload.") var maxFiles: Int = 2000
    @Option(help: "Predictions running at once; later uploads queue.") var concurrentJobs: Int = 1
    @Option(help: "Uploads that may wait; beyond that uploads get 503.") var maxQueued: Int = 32
    @Option(help: "cpu, cuda or cuda:N.") var device: String = "cpu"

    func run() async throws {
        var settings = ServeSettings(results: results)
        settings.weights = weights.map(absolutePath)
        settings.candidateClassifiers = candidateClassifier.map(absolutePath)
        settings.candidateScoring = try parseCandidateScoring(candidateScoring)
        settings.calibrated = !uncalibrated
        settings.host = host
        settings.port = port
        settings.token = token ?? ProcessInfo.processInfo.environment["WILLIS_TOKEN"]
        settings.showPHI = showPHI
        settings.maxUploadBytes = maxUploadMb << 20
        settings.maxFiles = maxFiles
        settings.concurrentJobs = concurrentJobs
        settings.maxQueuedJobs = maxQueued
        settings.device = device
        do { try settings.validate() } catch { throw ValidationError("\(error)") }
        guard FileManager.default.fileExists(atPath: results) else {
            throw ValidationError("no results folder \(results): run willis demo, or willis predict SERIES --weights W --results \(results)")
        }
        var engineLoaded = true
        do { _ = try engineOptions.load() } catch {
            engineLoaded = false
            FileHandle.standardError.write(Data("warning: \(error); results are shown, uploads cannot be predicted\n".utf8))
        }
        let server = WillisServer(settings: settings)
        // A predictor that cannot be made is said now, not only at the first upload; the results are still shown.
        if engineLoaded, let setup = server.setup {
            do { _ = try setup.predictor(device: Device(parsing: device)) } catch {
                FileHandle.standardError.write(Data("warning: uploads would be predicted with \((setup.weights + setup.candidateClassifiers).joined(separator: ", ")), which cannot be used: \(error); each upload will fail\n".utf8))
            }
        }
        let count = server.index.all().count
        print("serving \(count) series from \(results) at http://\(host.contains(":") ? "[\(host)]" : host):\(port)/"
              + (server.canPredict ? "" : " (no weights: uploads are refused)"))
        try await server.application().runService()
    }
}
