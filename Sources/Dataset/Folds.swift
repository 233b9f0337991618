/// Stratified k-fold assignment: series are grouped by (Aneurysm Present, modality), each
/// group is shuffled with a seeded generator and dealt round-robin, so every fold gets its
/// share of each stratum. Deterministic for a given seed and input order.
public enum Folds {
    public static func assign(_ series: [SeriesLabels], folds k: Int, seed: UInt64) -> [String: Int] {
        precondition(k >= 2, "need at least two folds")
        var strata: [String: [String]] = [:]
        for s in series { strata["\(s.isPositive)|\(s.modality.rawValue)", default: []].append(s.seriesInstanceUID) }
        var rng = SplitMix64(seed: seed)
        var fold: [String: Int] = [:]
        var next = 0  // continue dealing across strata so fold sizes stay within one of each other
        for key in strata.keys.sorted() {
            var uids = strata[key] ?? []
            uids.shuffle(using: &rng)
            for uid in uids {
                fold[uid] = next
                next = (next + 1) % k
            }
        }
        return fold
    }
}

/// A small, fast, seedable generator (Steele, Lea & Flood's SplitMix64).
public struct SplitMix64: RandomNumberGenerator, Sendable {
    /// The whole generator state (save it to resume the same sequence).
    public private(set) var state: UInt64
    public init(seed: UInt64) { state = seed }
    public init(state: UInt64) { self.state = state }

    /// Generator number `stream` of `seed`. The state is scrambled, not offset: seeds that differ by a
    /// multiple of SplitMix's increment would otherwise give the same sequence shifted by a few draws.
    public init(seed: UInt64, stream: UInt64) {
        state = Self.mix(seed ^ Self.mix(stream &+ 0x632B_E59B_D9B4_E019))
    }

    static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// One fold of a k-fold split, held out of training: the series `Folds.assign` deals to fold `index` of
/// `count` with `seed`. The seed is the split's own, not the training's, so runs with other training
/// seeds hold out the same series and their out-of-fold predictions join into one cross-validation.
public struct HeldOutFold: Sendable, Equatable, CustomStringConvertible {
    public let index: Int
    public let count: Int
    public let seed: UInt64

    /// Refuses a split of fewer than two folds, or an index outside it.
    public init(index: Int, of count: Int, seed: UInt64 = 0) throws {
        guard count >= 2, (0..<count).contains(index) else {
            throw FoldError(reason: "fold \(index) of \(count): the folds must be at least 2 and the fold from 0 to \(max(count - 1, 0))")
        }
        self.index = index
        self.count = count
        self.seed = seed
    }

    /// The UIDs of `series` dealt to this fold.
    public func members(of series: [SeriesLabels]) -> Set<String> {
        Set(Folds.assign(series, folds: count, seed: seed).filter { $0.value == index }.map(\.key))
    }

    public var description: String { "fold \(index) of \(count)" }
}

public struct FoldError: Error, CustomStringConvertible {
    public let reason: String
    public var description: String { reason }
}
