import Dispatch
import Dataset
import Foundation
import Torch

/// Training or validation examples: their ids and labels in memory, their inputs read on demand
/// (from the memory-mapped cache in `willis train`), so a dataset need not fit in RAM.
public struct SampleSet: Sendable {
    public let ids: [String]
    public let labels: [[Bool]]
    let input: @Sendable (Int) throws -> [Float]
    /// The detector's targets per example (nil: the set has none).
    var targets: (@Sendable (Int) throws -> (DetectionTargets, [UInt8]?))?
    public var modalities: [Int?] = []
    /// `Sample.inputSubdivision` of every example.
    public var inputSubdivision = 1

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
        inputSubdivision = samples.first?.inputSubdivision ?? 1
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
        s.inputSubdivision = inputSubdivision
        return s
    }

    /// The examples at `indices`, in order, read on all cores: a batch's reads are copies of tens of
    /// megabytes each (a sub-voxel input is 24 MB), which one thread cannot do as fast as a GPU steps.
    public func samples(_ indices: [Int]) throws -> [Sample] {
        guard indices.count > 1 else { return try indices.map(sample) }
        return try ParallelMap.tryMap(indices.count) { try sample(indices[$0]) }
    }
}

/// `body(0..<count)` on all cores, results in order.
enum ParallelMap {
    static func map<T: Sendable>(_ count: Int, _ body: @Sendable (Int) -> T) -> [T] {
        var results = [T?](repeating: nil, count: count)
        results.withUnsafeMutableBufferPointer { out in
            nonisolated(unsafe) let slots = out
            DispatchQueue.concurrentPerform(iterations: count) { n in slots[n] = body(n) }
        }
        return results.compactMap { $0 }
    }

    /// The same for a body that throws: the first error by index is thrown, after every call has ended.
    static func tryMap<T: Sendable>(_ count: Int, _ body: @Sendable (Int) throws -> T) throws -> [T] {
        try map(count) { n in Result { try body(n) } }.map { try $0.get() }
    }

    /// The arrays one after another, copied on all cores (a batch of sub-voxel patches is 50 MB).
    static func concatenated(_ parts: [[Float]]) -> [Float] {
        let offsets = parts.reduce(into: [0]) { $0.append($0[$0.count - 1] + $1.count) }
        return [Float](unsafeUninitializedCapacity: offsets[parts.count]) { buffer, initialized in
            nonisolated(unsafe) let out = buffer
            DispatchQueue.concurrentPerform(iterations: parts.count) { n in
                parts[n].withUnsafeBufferPointer { source in
                    guard let base = source.baseAddress, let target = out.baseAddress else { return }
                    (target + offsets[n]).initialize(from: base, count: source.count)
                }
            }
            initialized = offsets[parts.count]
        }
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
    /// Detector batches: each sample's origin in its prepared grid (3 per sample) and that grid's shape.
    var gridOrigins: [[Int]] = []
    var grid: [Int] = []
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

/// The generator a background batch builder draws augmentations from; handed back when the pass ends.
final class GeneratorBox: @unchecked Sendable {
    var rng: SplitMix64
    init(_ rng: SplitMix64) { self.rng = rng }
}

/// The passes over a sample set that both training loops make: batches built in the background, the
/// network's work on the calling thread, and the time it waited for data measured.
enum Passes {
    typealias Wait = (seconds: Double, fraction: Double)

    static func wait(_ prefetcher: BatchPrefetcher, since start: UInt64) -> Wait {
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return (prefetcher.waitSeconds, elapsed > 0 ? prefetcher.waitSeconds / elapsed : 0)
    }

    /// One epoch in an order drawn with `rng` by `sampling` (every sample once, shuffled; or balanced
    /// or weighted draws, the latter by `seriesWeights`). `build` turns a batch's samples into a host
    /// batch and may draw augmentations from the generator it is given, in batch order, so that a run
    /// resumed from the generator's saved state repeats them; `rng` ends where those draws left it.
    /// `step` gets each batch and its weight in the mean over the global batch (1 on one process; see
    /// `DataParallel`), and returns its part of the global batch's loss (the whole loss on one process).
    /// The mean loss is over global batches, the same on every rank.
    static func train(_ set: SampleSet, batchSize: Int, rng: inout SplitMix64, parallel: DataParallel? = nil,
                      sampling: SeriesSampling = .uniform, seriesWeights: [String: Double] = [:],
                      build: @escaping @Sendable ([Sample], GeneratorBox) -> HostBatch,
                      step: (HostBatch, Double) throws -> Double, onBatch: (Int, Int) -> Void) throws -> (meanLoss: Double, wait: Wait) {
        let order = sampling.order(ids: set.ids, labels: set.labels, modalities: set.modalities, weights: seriesWeights, using: &rng)
        let world = parallel?.worldSize ?? 1, rank = parallel?.rank ?? 0
        let global = stride(from: 0, to: order.count, by: batchSize * world).map { Array(order[$0..<min(order.count, $0 + batchSize * world)]) }
        var batches: [[Int]] = [], weights: [Double] = []
        for g in global {
            let mine = Array(g[DataParallel.share(of: g.count, rank: rank, worldSize: world)])
            // A rank left without a sample still joins the step's collectives, with a sample weighted 0.
            batches.append(mine.isEmpty ? [g[0]] : mine)
            weights.append(Double(mine.count) / Double(g.count))
        }
        // One process draws augmentations from the run's generator in order (resume repeats them);
        // each rank draws from its own stream derived from the generator's state, which the shared
        // generator does not consume (so the next epoch's order is the one a single process would use
        // when nothing is augmented).
        let generator = GeneratorBox(parallel == nil ? rng : SplitMix64(seed: rng.state, stream: UInt64(rank)))
        let planned = batches
        let prefetcher = BatchPrefetcher(count: planned.count) { b in build(try set.samples(planned[b]), generator) }
        let start = DispatchTime.now().uptimeNanoseconds
        var total = 0.0, count = 0
        do {
            while let batch = try prefetcher.next() {
                let loss: Double
                do { loss = try step(batch, weights[count]) } catch let diverged as TrainingDiverged {
                    throw TrainingDiverged(place: "batch \(count + 1) of \(batches.count)", loss: diverged.loss)
                }
                count += 1
                // One process stops at the first loss that is not finite: the step has already made the
                // weights NaN. Ranks instead stop together at the end of the epoch, on the reduced mean
                // that they all see alike (NaN gradients reach every rank through the all-reduce).
                if parallel == nil && !loss.isFinite {
                    throw TrainingDiverged(place: "batch \(count) of \(batches.count)", loss: loss)
                }
                total += loss
                onBatch(count, batches.count)
            }
        } catch {
            prefetcher.finish()
            throw error
        }
        prefetcher.finish()
        if parallel == nil { rng = generator.rng }
        if let parallel { total = try parallel.group.reduce(total, .sum) }
        let mean = count > 0 ? total / Double(count) : 0
        guard mean.isFinite else {
            throw TrainingDiverged(place: "the end of an epoch of \(count) batches" + (parallel == nil ? "" : " (the mean over the ranks)"), loss: mean)
        }
        return (mean, wait(prefetcher, since: start))
    }

    /// The set in order, without augmentation: the mean batch loss and each sample's 14 probabilities.
    /// `evaluate` returns a batch's loss and its probabilities [N × 14]. With `parallel`, the ranks take
    /// the batches in turn and all-reduce the results, so every rank ends with what one process would compute.
    static func evaluate(_ set: SampleSet, batchSize: Int, parallel: DataParallel? = nil, build: @escaping @Sendable ([Sample]) -> HostBatch,
                         evaluate: (HostBatch) throws -> (loss: Double, probabilities: [Float])) throws
        -> (loss: Double, probabilities: [[Double]], wait: Wait) {
        let batchCount = (set.count + batchSize - 1) / batchSize
        let (world, rank) = (parallel?.worldSize ?? 1, parallel?.rank ?? 0)
        let mine = Array(stride(from: rank, to: batchCount, by: world))
        let prefetcher = BatchPrefetcher(count: mine.count) { n in
            let b = mine[n]
            return build(try set.samples(Array(b * batchSize..<min(set.count, (b + 1) * batchSize))))
        }
        defer { prefetcher.finish() }
        let start = DispatchTime.now().uptimeNanoseconds
        var total = 0.0
        var values = [Double](repeating: 0, count: set.count * 14)
        var n = 0
        while let batch = try prefetcher.next() {
            let (loss, p) = try evaluate(batch)
            total += loss
            let first = mine[n] * batchSize
            for (k, v) in p.prefix(batch.count * 14).enumerated() { values[first * 14 + k] = Double(v) }
            n += 1
        }
        if let parallel {
            let gathered = try Tensor(values + [total], shape: [values.count + 1])
            try parallel.group.allReduce([gathered], .sum)
            let all = try gathered.toArray(of: Double.self)
            total = all[values.count]
            values = Array(all.prefix(values.count))
        }
        let probabilities = (0..<set.count).map { Array(values[($0 * 14)..<(($0 + 1) * 14)]) }
        return (batchCount > 0 ? total / Double(batchCount) : 0, probabilities, wait(prefetcher, since: start))
    }
}
