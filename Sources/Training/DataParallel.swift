import Dataset
import Dispatch
import Foundation
import Torch

/// Data-parallel training over a torch.distributed process group, as PyTorch's
/// DistributedDataParallel does it: every rank holds the whole model, starts from rank 0's
/// parameters, trains on its own slice of each global batch, and applies the same averaged
/// gradient, so the replicas stay bit-identical.
///
/// - Sampling: each epoch's order is shuffled from the checkpointed generator, the same on every
///   rank; global batch g is `order[g·B·W ..< (g+1)·B·W]`, and rank r takes its r-th share (B each
///   when full; the last batch split as evenly as it goes). No sample is repeated or dropped.
/// - Gradients: each rank's loss is weighted by its share of the global batch before backward, so
///   the all-reduced sum is exactly the global batch's mean gradient (what one process with batch
///   B·W would compute, up to summation order). A rank with no sample in the last batch runs one
///   with weight 0, so that every rank takes part in every collective.
/// - The all-reduce runs in buckets of about `bucketBytes` after backward. The engine's backward is
///   one call with no per-parameter hooks, so it cannot overlap with backward here; its time is
///   measured (`reduceSeconds`) and reported per epoch.
/// - Batch norm (the reference UNet3D): batch statistics stay per rank, as in DDP; the running
///   statistics are averaged across ranks at the end of each epoch, before validation and the
///   checkpoint. DDP instead broadcasts rank 0's at every forward; averaging uses every rank's data
///   and costs one collective per epoch. SyncBatchNorm would make each step's statistics global, at
///   two collectives per normalisation layer per step; the detector uses instance norm and needs neither.
public final class DataParallel {
    public let group: ProcessGroup
    public var rank: Int { group.rank }
    public var worldSize: Int { group.worldSize }
    public var isLeader: Bool { rank == 0 }
    public var bucketBytes = 25 << 20
    /// Time spent in gradient all-reduces since the last `resetTimers`, and the bytes each step reduces.
    public private(set) var reduceSeconds = 0.0
    public private(set) var bytesPerStep = 0

    public init(group: ProcessGroup) { self.group = group }

    public func resetTimers() { reduceSeconds = 0 }

    /// The part of a global batch of `count` samples that `rank` trains on.
    public static func share(of count: Int, rank: Int, worldSize: Int) -> Range<Int> {
        let base = count / worldSize, extra = count % worldSize
        let start = rank * base + min(rank, extra)
        return start..<(start + base + (rank < extra ? 1 : 0))
    }

    /// Every rank takes rank 0's values of `tensors` (parameters, buffers, a weight average).
    public func synchronize(_ tensors: [Tensor]) throws {
        try group.broadcast(tensors, from: 0)
    }

    /// Sums the gradients of `parameters` over the ranks, in buckets of about `bucketBytes`.
    public func reduceGradients(_ parameters: [Tensor]) throws {
        let start = DispatchTime.now().uptimeNanoseconds
        let grads = parameters.compactMap(\.grad)
        guard grads.count == parameters.count else {
            throw DistributedError.collective(op: "gradient all-reduce", rank: rank,
                                              message: "\(parameters.count - grads.count) parameter(s) have no gradient on this rank")
        }
        var bucket: [Tensor] = [], bytes = 0, total = 0
        for g in grads {
            let size = g.count * g.dtype.byteSize
            if !bucket.isEmpty && bytes + size > bucketBytes {
                try group.allReduce(bucket, .sum)
                bucket = []
                bytes = 0
            }
            bucket.append(g)
            bytes += size
            total += size
        }
        if !bucket.isEmpty { try group.allReduce(bucket, .sum) }
        bytesPerStep = total
        reduceSeconds += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    /// Averages `tensors` (batch-norm running statistics) over the ranks.
    public func average(_ tensors: [Tensor]) throws {
        guard !tensors.isEmpty else { return }
        try group.allReduce(tensors, .mean)
    }

    /// Whether every rank holds bit-identical `tensors`: a 64-bit hash of their bytes, compared by
    /// all-reducing its halves with max and min.
    public func replicasAgree(_ tensors: [Tensor]) throws -> Bool {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for t in tensors {
            try t.withUnsafeBytes { raw in
                for b in raw { hash = (hash ^ UInt64(b)) &* 0x100_0000_01b3 }
            }
        }
        let halves = [Int64(hash >> 32), Int64(hash & 0xffff_ffff)]
        let high = try Tensor(halves, shape: [2]), low = try Tensor(halves, shape: [2])
        try group.allReduce([high], .max)
        try group.allReduce([low], .min)
        return try high.toArray(of: Int64.self) == low.toArray(of: Int64.self)
    }
}
