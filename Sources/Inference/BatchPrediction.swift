import DICOM
import Dispatch
import Foundation
import Preprocessing
import VolumeCore

/// Predicts many series with reading, decoding and preprocessing of later series overlapping the
/// network on earlier ones. `workers` threads each take the next series, load and prepare it; the
/// calling thread runs the network on prepared inputs in the series' order. At most
/// `workers + queueDepth` series are in flight at once, which bounds memory to that many volumes.
public struct BatchPrediction {
    public struct Outcome: Sendable {
        public var folder: String
        public var uid: String?
        public var probabilities: [Double]?
        public var error: String?
        public var warnings: [String]
        public var modality: String?
        /// Seconds spent loading + preparing this series (on its worker).
        public var prepareSeconds: Double
        /// What was recorded in the results folder, when there is one.
        public var result: SeriesResult?
    }

    public var workers: Int
    public var queueDepth: Int
    /// Where to record each series' result and evidence (see `ResultsFolder`), when set. A failure to
    /// write there is a warning on that series; its probabilities stand.
    public var results: ResultsFolder?

    public init(workers: Int = 2, queueDepth: Int = 2) {
        self.workers = max(1, workers)
        self.queueDepth = max(1, queueDepth)
    }

    /// What a worker hands the network: the prepared input or why there is none.
    struct Prepared: @unchecked Sendable {
        var uid: String?
        var input: [Float]?
        var record: PreparationRecord?
        /// Where the input's voxels lie in the patient (for evidence files).
        var grid: Geometry?
        var modality: String?
        var seriesDescription: String?
        var echoTimeMS: Double?
        var identifying: [String: String]?
        /// The dot filter's candidates on the grid, when the second stage reads them.
        var dotCandidates: Predictor.DotCandidates = [:]
        /// Whether the series' vessels are bright or dark, for a contrast-aligned second stage.
        var contrast: DotFilter.VesselContrast?
        var error: String?
        var warnings: [String]
        var seconds: Double
        static func failed(_ error: String) -> Prepared {
            Prepared(uid: nil, input: nil, record: nil, grid: nil, modality: nil, seriesDescription: nil, identifying: nil, error: error, warnings: [], seconds: 0)
        }
    }

    /// Shared state of one run, guarded by `condition`.
    final class Board: @unchecked Sendable {
        let condition = NSCondition()
        var nextIndex = 0
        var consumed = 0
        var results: [Int: Prepared] = [:]
    }

    /// Runs `predictor` over `folders`; `onResult` is called on the calling thread, in order.
    public func run(_ folders: [String], predictor: Predictor, loader: SeriesLoader = SeriesLoader(),
                    onResult: (Int, Outcome) -> Void) {
        let board = Board()
        let capacity = workers + queueDepth
        let group = DispatchGroup()
        for _ in 0..<workers {
            group.enter()
            let thread = Thread {
                defer { group.leave() }
                while true {
                    board.condition.lock()
                    while board.nextIndex < folders.count && board.nextIndex - board.consumed >= capacity { board.condition.wait() }
                    guard board.nextIndex < folders.count else {
                        board.condition.unlock()
                        return
                    }
                    let i = board.nextIndex
                    board.nextIndex += 1
                    board.condition.unlock()
                    let start = DispatchTime.now().uptimeNanoseconds
                    var prepared: Prepared
                    do {
                        let series = try loader.load(folders[i])
                        let (input, record) = predictor.prepareWithRecord(series)
                        let shape = predictor.inputShape
                        let grid = record?.output ?? ReferencePreprocessing.outputGeometry(
                            source: series.volume.geometry, sourceShape: series.volume.shape, shape: (shape[0], shape[1], shape[2]))
                        prepared = Prepared(uid: series.seriesInstanceUID, input: input, record: record, grid: grid,
                                            modality: series.modality, seriesDescription: series.seriesDescription, identifying: series.identifyingFields, error: nil,
                                            warnings: series.warnings + Predictor.warnings(input: input, record: record), seconds: 0)
                        // Here, on the worker, because the filter reads the series' own voxels, which are not kept.
                        prepared.dotCandidates = predictor.dotCandidates(series, record: record)
                        prepared.warnings += predictor.warnings(dotCandidates: prepared.dotCandidates)
                        prepared.contrast = DotFilter.VesselContrast(series)
                        prepared.echoTimeMS = series.echoTimeMS
                    } catch {
                        prepared = .failed("\(error)")
                    }
                    prepared.seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                    board.condition.lock()
                    board.results[i] = prepared
                    board.condition.broadcast()
                    board.condition.unlock()
                }
            }
            thread.stackSize = 1 << 22
            thread.start()
        }
        for i in folders.indices {
            board.condition.lock()
            while board.results[i] == nil { board.condition.wait() }
            let prepared = board.results.removeValue(forKey: i) ?? .failed("lost")
            board.condition.unlock()
            var outcome = Outcome(folder: folders[i], uid: prepared.uid, probabilities: nil, error: prepared.error,
                                  warnings: prepared.warnings, modality: prepared.modality, prepareSeconds: prepared.seconds)
            var evidence: (files: [String], candidates: [Evidence.Candidate]?) = ([], nil)
            let key = ResultsFolder.key(for: prepared.uid ?? (folders[i] as NSString).lastPathComponent)
            if let input = prepared.input {
                do {
                    let result = try predictor.infer(input, heatmap: results != nil, dotCandidates: prepared.dotCandidates, contrast: prepared.contrast)
                    outcome.probabilities = result.probabilities
                    if let results, let grid = prepared.grid {
                        evidence = try Evidence.write(input: predictor.preparation.onGrid(input), heatmap: result.heatmap, peaks: result.peaks, grid: grid,
                                                      shape: predictor.inputShape,
                                                      candidateCount: predictor.candidateCount, to: results.folder(for: key))
                    }
                } catch {
                    outcome.probabilities = nil
                    outcome.error = "\(error)"
                }
            }
            if let results {
                let result = SeriesResult(
                    key: key, seriesInstanceUID: prepared.uid, source: folders[i], modality: prepared.modality,
                    seriesDescription: prepared.seriesDescription, echoTimeMS: prepared.echoTimeMS, vesselContrast: prepared.contrast, status: outcome.probabilities == nil ? .failed : .ok,
                    probabilities: outcome.probabilities, error: outcome.error,
                    warnings: outcome.warnings, inputShape: prepared.input == nil ? nil : predictor.inputShape, files: evidence.files,
                    candidates: evidence.candidates)
                do {
                    try results.record(result, identifying: prepared.identifying)
                    outcome.result = result
                } catch {
                    outcome.warnings.append("not recorded in \(results.root): \(error)")
                }
            }
            board.condition.lock()
            board.consumed += 1
            board.condition.broadcast()
            board.condition.unlock()
            onResult(i, outcome)
        }
        group.wait()
    }
}
