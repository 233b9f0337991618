import DICOM
import Dispatch
import Foundation
import Preprocessing

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
        /// Seconds spent loading + preparing this series (on its worker).
        public var prepareSeconds: Double
    }

    public var workers: Int
    public var queueDepth: Int
    /// Where to write each series' heatmap NIfTI and candidates (detector weights only; see `Evidence`).
    public var evidenceFolder: String?

    public init(workers: Int = 2, queueDepth: Int = 2) {
        self.workers = max(1, workers)
        self.queueDepth = max(1, queueDepth)
    }

    /// What a worker hands the network: the prepared input or why there is none.
    struct Prepared: @unchecked Sendable {
        var uid: String?
        var input: [Float]?
        var record: PreparationRecord?
        var error: String?
        var warnings: [String]
        var seconds: Double
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
                        prepared = Prepared(uid: series.seriesInstanceUID, input: input, record: record, error: nil,
                                            warnings: series.warnings + Predictor.warnings(input: input, record: record), seconds: 0)
                    } catch {
                        prepared = Prepared(uid: nil, input: nil, record: nil, error: "\(error)", warnings: [], seconds: 0)
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
            let prepared = board.results.removeValue(forKey: i) ?? Prepared(uid: nil, input: nil, record: nil, error: "lost", warnings: [], seconds: 0)
            board.condition.unlock()
            var outcome = Outcome(folder: folders[i], uid: prepared.uid, probabilities: nil, error: prepared.error,
                                  warnings: prepared.warnings, prepareSeconds: prepared.seconds)
            if let input = prepared.input {
                do {
                    let result = try predictor.infer(input, heatmap: evidenceFolder != nil)
                    outcome.probabilities = result.probabilities
                    if let folder = evidenceFolder, let heat = result.heatmap, let record = prepared.record, let uid = prepared.uid {
                        try Evidence.write(heatmap: heat, input: input, record: record, shape: predictor.inputShape, uid: uid, to: folder)
                    }
                } catch { outcome.error = "\(error)" }
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
