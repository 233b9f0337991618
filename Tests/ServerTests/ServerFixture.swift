import Anatomy
import DICOM
import Foundation
import Inference
import Models
import Preprocessing
import Server
import Synth
import TestSupport
import Torch

/// A results folder made the way `willis predict --results` makes it: three synthetic series
/// predicted by a small detector (so there are heatmaps and candidates), and one that cannot be
/// read. Built once; tests that change results work on a copy (`copy()`).
struct ServerFixture {
    let root: String
    let weights: String
    let results: ResultsFolder
    /// The synthetic series' folders, and the truth about them.
    let seriesFolders: [String]
    let cases: [SynthCase]

    static let shared: Result<ServerFixture, Error> = Result { try ServerFixture() }
    static func get() throws -> ServerFixture { try shared.get() }

    init() throws {
        _ = try engine()
        root = try temporaryDirectory()
        cases = try SynthDataset.generate(SynthOptions(count: 4, size: .small, seed: 57), into: "\(root)/data")
        try Torch.manualSeed(11)
        let net = try Detector(baseFilters: 4)
        var preparation = Preparation(mode: .improved, shape: [16, 32, 32])
        preparation.spacing = 4.8
        weights = "\(root)/detector.safetensors"
        try net.store.save(to: weights, metadata: ["willis_model": "detector", Preparation.metadataKey: preparation.json])
        let base = root
        seriesFolders = cases.map { "\(base)/data/series/\($0.seriesInstanceUID)" }
        let broken = "\(root)/data/series/zz broken series"
        try FileManager.default.createDirectory(atPath: broken, withIntermediateDirectories: true)
        try Data("not DICOM at all".utf8).write(to: URL(fileURLWithPath: "\(broken)/1.dcm"))
        let results = ResultsFolder("\(root)/results")
        self.results = results
        let predictor = try Predictor(weights: weights)
        try results.writeRun(RunInfo(weights: [weights], preparation: predictor.preparation))
        var pipeline = BatchPrediction(workers: 1, queueDepth: 1)
        pipeline.results = results
        // The first three are predicted in advance; the fourth is left for uploads.
        pipeline.run(Array(seriesFolders.prefix(3)) + [broken], predictor: predictor,
                     loader: SeriesLoader(options: SeriesLoader.Options(includePHI: true))) { _, _ in }
    }

    /// A location prior for the fixture's crop (16×32×32 at 4.8 mm): each location's points spread
    /// around a place of its own.
    static func prior() throws -> LocationPrior {
        var points: [(position: [Double], location: LocationLabel)] = []
        for l in LocationLabel.locations {
            let r = Double(l.rawValue)
            for n in 0..<3 {
                let d = Double(n)
                points.append(([10 + r * 4 + d, 40 + d * 5, 30 + Double(l.rawValue % 5) * 18], l))
            }
        }
        return try LocationPrior.fit(points)
    }

    /// The fixture's detector with a location prior beside it (so it reads candidates).
    func detectorWithPrior() throws -> String {
        let path = "\(try temporaryDirectory())/detector-prior.safetensors"
        let file = try SafeTensorsFile(path: weights)
        let tensors = try file.names.filter { !$0.hasPrefix("__") }.map { ($0, try file.tensor($0)) }
        var metadata = file.metadata
        metadata[LocationPrior.metadataKey] = try Self.prior().json
        try SafeTensors.write(tensors, metadata: metadata, to: path)
        return path
    }

    /// An untrained candidate classifier (seeded) as `willis train-candidates` writes one: a detector's
    /// second stage, or one trained with no detector (the dot filter's candidates, its own preparation
    /// and prior).
    func candidateClassifier(standsAlone: Bool, seed: UInt64) throws -> String {
        try Torch.manualSeed(seed)
        let classifier = try CandidateClassifier(baseFilters: 4, patchSize: 8)
        let preparation = try Predictor(weights: weights).preparation
        let settings = CandidateClassifierSettings(baseFilters: 4, patchSize: 8, peaksPerSeries: 4, peakThreshold: 0, preparation: preparation.cacheKey,
                                                   dotFilter: standsAlone ? DotFilterCandidates(count: 4, depthMM: 8, separationMM: 10) : nil,
                                                   standsAlone: standsAlone ? true : nil)
        var metadata = ["willis_model": "candidate_classifier",
                        CandidateClassifierSettings.metadataKey: String(decoding: try JSONEncoder().encode(settings), as: UTF8.self)]
        if standsAlone {
            metadata[Preparation.metadataKey] = preparation.json
            metadata[LocationPrior.metadataKey] = try Self.prior().json
        }
        let path = "\(try temporaryDirectory())/candidate-classifier.safetensors"
        try classifier.store.save(to: path, metadata: metadata)
        return path
    }

    /// A copy of the results folder that a test may add to.
    func copy() throws -> ResultsFolder {
        let target = "\(try temporaryDirectory())/results"
        try FileManager.default.copyItem(atPath: results.root, toPath: target)
        return ResultsFolder(target)
    }

    func settings(_ results: ResultsFolder? = nil) -> ServeSettings {
        var s = ServeSettings(results: (results ?? self.results).root)
        s.weights = [weights]
        return s
    }
}

/// Width and height from a PNG's IHDR chunk.
func pngSize(_ data: Data) -> (width: Int, height: Int)? {
    let b = [UInt8](data.prefix(24))
    guard b.count == 24, b[0] == 0x89, b[1] == 0x50, b[12] == 0x49, b[13] == 0x48 else { return nil }
    func u32(_ o: Int) -> Int { Int(b[o]) << 24 | Int(b[o + 1]) << 16 | Int(b[o + 2]) << 8 | Int(b[o + 3]) }
    return (u32(16), u32(20))
}
