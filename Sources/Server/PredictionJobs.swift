import DICOM
import Foundation
import Inference

/// One uploaded series on its way to a result.
public struct PredictionJob: Codable, Sendable, Equatable {
    public enum Status: String, Codable, Sendable { case queued, running, done, failed }
    public var id: String
    public var status: Status
    /// Jobs ahead of this one while it is queued.
    public var position: Int?
    public var files: Int
    public var submittedAt: Date
    public var startedAt: Date?
    public var finishedAt: Date?
    /// The series' key in the results folder, once predicted (or recorded as failed).
    public var resultKey: String?
    public var error: String?
}

/// Uploads waiting for and running through prediction. At most `limit` run at once, each on a
/// thread of its own with a `Predictor` of its own (libtorch calls block, and a network's
/// buffers are not shared between concurrent forwards); the rest wait in order. Each job runs
/// `BatchPrediction` on its folder, as `willis predict --results` does.
public final class PredictionJobs: @unchecked Sendable {
    let lock = NSLock()
    var jobs: [String: PredictionJob] = [:]
    var order: [String] = []
    var pending: [(id: String, folder: String)] = []
    var running = 0
    var idlePredictors: [Predictor] = []
    /// The most jobs that ever ran at once (the tests check the limit holds).
    public private(set) var mostRunningAtOnce = 0

    let limit: Int
    let maxQueued: Int
    let workers: Int
    let results: ResultsFolder
    let makePredictor: @Sendable () throws -> Predictor
    /// Called after each job finishes, on its thread.
    let onFinished: @Sendable (PredictionJob) -> Void
    /// Finished jobs kept for `/api/jobs/{id}`.
    let keepFinished = 500

    public init(limit: Int, maxQueued: Int, workers: Int, results: ResultsFolder,
                makePredictor: @escaping @Sendable () throws -> Predictor, onFinished: @escaping @Sendable (PredictionJob) -> Void = { _ in }) {
        self.limit = max(1, limit)
        self.maxQueued = max(1, maxQueued)
        self.workers = workers
        self.results = results
        self.makePredictor = makePredictor
        self.onFinished = onFinished
    }

    /// Where an upload is unpacked before it becomes a job: hidden inside the results folder, so it
    /// is never listed as a series, and removed when the job ends.
    public func newUploadFolder() -> (id: String, folder: String) {
        let id = UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
        return (String(id), "\(results.root)/.uploads/\(id)")
    }

    /// Queues the series unpacked in `folder`.
    public func submit(id: String, folder: String, files: Int) throws -> PredictionJob {
        lock.lock()
        defer { lock.unlock() }
        guard pending.count < maxQueued else {
            try? FileManager.default.removeItem(atPath: folder)
            throw ServeError.queueFull(pending.count)
        }
        let job = PredictionJob(id: id, status: .queued, position: pending.count, files: files, submittedAt: Date())
        jobs[id] = job
        order.append(id)
        pending.append((id, folder))
        startWaitingLocked()
        return jobs[id] ?? job
    }

    public func job(_ id: String) -> PredictionJob? {
        lock.lock()
        defer { lock.unlock() }
        return jobs[id]
    }

    public var counts: (queued: Int, running: Int) {
        lock.lock()
        defer { lock.unlock() }
        return (pending.count, running)
    }

    /// Blocks until no job is queued or running (for tests and shutdown).
    public func waitUntilIdle(timeout: TimeInterval = 600) -> Bool {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            let c = counts
            if c.queued == 0 && c.running == 0 { return true }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return false
    }

    func startWaitingLocked() {
        while running < limit, !pending.isEmpty {
            let next = pending.removeFirst()
            running += 1
            mostRunningAtOnce = max(mostRunningAtOnce, running)
            jobs[next.id]?.status = .running
            jobs[next.id]?.position = nil
            jobs[next.id]?.startedAt = Date()
            let thread = Thread { [self] in run(next.id, folder: next.folder) }
            thread.stackSize = 1 << 23
            thread.start()
        }
        for (n, p) in pending.enumerated() { jobs[p.id]?.position = n }
    }

    func run(_ id: String, folder: String) {
        var predictor: Predictor?
        var failure: String?
        var key: String?
        lock.lock()
        if !idlePredictors.isEmpty { predictor = idlePredictors.removeLast() }
        lock.unlock()
        do {
            if predictor == nil { predictor = try makePredictor() }
        } catch { failure = "\(error)" }
        if let predictor {
            var pipeline = BatchPrediction(workers: workers, queueDepth: 1)
            pipeline.results = results
            pipeline.run([folder], predictor: predictor, loader: SeriesLoader(options: SeriesLoader.Options(includePHI: true))) { _, outcome in
                key = outcome.result?.key
                if outcome.probabilities == nil { failure = outcome.error ?? "prediction failed" }
            }
        }
        try? FileManager.default.removeItem(atPath: folder)
        lock.lock()
        if let predictor { idlePredictors.append(predictor) }
        jobs[id]?.status = failure == nil ? .done : .failed
        jobs[id]?.error = failure
        jobs[id]?.resultKey = key
        jobs[id]?.finishedAt = Date()
        let finished = jobs[id]
        running -= 1
        // Forget the oldest finished jobs beyond what is kept.
        let done = order.filter { jobs[$0]?.finishedAt != nil }
        for old in done.dropLast(keepFinished) { jobs[old] = nil }
        order.removeAll { jobs[$0] == nil }
        startWaitingLocked()
        lock.unlock()
        if let finished { onFinished(finished) }
    }
}
