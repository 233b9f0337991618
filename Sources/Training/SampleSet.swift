import Dispatch
import Dataset
import Foundation

/// Training or validation examples: their ids and labels in memory, their inputs read on demand
/// (from the memory-mapped cache in `willis train`), so a dataset need not fit in RAM.
public struct SampleSet: Sendable {
    public let ids: [String]
    public let labels: [[Bool]]
    let input: @Sendable (Int) throws -> [Float]
    /// The detector's targets per example (nil: the set has none).
    var targets: (@Sendable (Int) throws -> (DetectionTargets, [UInt8]?))?
    public var modalities: [Int?] = []

    public var count: Int { ids.count }

    public init(ids: [String], labels: [[Bool]], input: @escaping @Sendable (Int) throws -> [Float]) {
        precondition(ids.count == labels.count, "one label row per id")
        self.ids = ids
        self.labels = labels
        self.input = input
    }

    /// Examples already in memory.
    public init(_ samples: [Sample]) {
        let inputs = samples.map(\.input)
        self.init(ids: samples.map(\.id), labels: samples.map(\.labels), input: { inputs[$0] })
        if samples.contains(where: { $0.targets != nil }) {
            let targets = samples.map { ($0.targets ?? DetectionTargets(), $0.vessels) }
            self.targets = { targets[$0] }
        }
        modalities = samples.map(\.modality)
    }

    /// Adds the detector's targets (read on demand) and each example's modality index.
    public func withTargets(modalities: [Int?], _ targets: @escaping @Sendable (Int) throws -> (DetectionTargets, [UInt8]?)) -> SampleSet {
        var s = self
        s.targets = targets
        s.modalities = modalities
        return s
    }

    public func sample(_ i: Int) throws -> Sample {
        var s = Sample(id: ids[i], input: try input(i), labels: labels[i])
        if let targets { (s.targets, s.vessels) = try targets(i) }
        if i < modalities.count { s.modality = modalities[i] }
        return s
    }
}

/// One batch ready for the engine: inputs [N, D, H, W] and labels [N, 14], flattened.
struct HostBatch: Sendable {
    var ids: [String]
    var inputs: [Float]
    var labels: [Float]
    var count: Int { ids.count }
    /// Detector batches only: Gaussian heatmaps (same size as `inputs`), vessel labels of the samples
    /// that have them (`vesselSamples` lists which), and modality one-hots [N, 4].
    var heatmaps: [Float] = []
    var vessels: [Int64] = []
    var vesselSamples: [Int] = []
    var modalities: [Float] = []
}

/// Assembles batches on a background thread, at most `depth` ahead of the consumer, so reading the
/// cache and augmenting overlap with the network's step. Batches come out in order; the time the
/// consumer waits is measured, which is what "compute never waits on I/O" is checked against.
final class BatchPrefetcher: @unchecked Sendable {
    private let condition = NSCondition()
    private var ready: [Result<HostBatch, Error>] = []
    private var cancelled = false
    private var producerDone = false
    private let depth: Int
    /// Seconds `next()` spent waiting for a batch.
    private(set) var waitSeconds = 0.0

    /// `make(b)` builds batch b (0..<count), called in order on one background thread.
    init(count: Int, depth: Int = 2, make: @escaping @Sendable (Int) throws -> HostBatch) {
        self.depth = max(1, depth)
        let thread = Thread { [self] in
            for b in 0..<count {
                condition.lock()
                while ready.count >= self.depth && !cancelled { condition.wait() }
                let stop = cancelled
                condition.unlock()
                if stop { break }
                let batch = Result { try make(b) }
                condition.lock()
                ready.append(batch)
                condition.broadcast()
                condition.unlock()
                if case .failure = batch { break }
            }
            condition.lock()
            producerDone = true
            condition.broadcast()
            condition.unlock()
        }
        thread.stackSize = 1 << 22
        thread.start()
    }

    /// The next batch in order, or nil after the last.
    func next() throws -> HostBatch? {
        let start = DispatchTime.now().uptimeNanoseconds
        condition.lock()
        defer {
            condition.unlock()
            waitSeconds += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        }
        while ready.isEmpty && !producerDone { condition.wait() }
        guard !ready.isEmpty else { return nil }
        let batch = ready.removeFirst()
        condition.broadcast()
        return try batch.get()
    }

    /// Stops the producer and waits for it (the producer may hold state the caller reads next).
    func finish() {
        condition.lock()
        cancelled = true
        condition.broadcast()
        while !producerDone { condition.wait() }
        condition.unlock()
    }

    deinit { finish() }
}
