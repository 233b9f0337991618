import Dataset

/// How an epoch draws its training series.
public enum SeriesSampling: String, Codable, Sendable, CaseIterable {
    /// Every series once, in a shuffled order (the notebook's).
    case uniform
    /// As many draws as series, with replacement, weighted by `BalancedSampling`: each modality
    /// equally often and, within it, each aneurysm location equally often. A series of a rare modality
    /// or location is seen several times an epoch, a common one may be left out.
    case balanced
    /// As many draws as series, with replacement, in proportion to each series' weight in the run's
    /// `TrainingConfig.seriesWeights` (a table the user gives; a series it does not list weighs 1).
    case weighted

    /// The series (indices into `ids`) of one epoch, in order. `weights` is read only by `weighted`.
    func order(ids: [String], labels: [[Bool]], modalities: [Int?], weights: [String: Double], using rng: inout SplitMix64) -> [Int] {
        switch self {
        case .uniform:
            var order = Array(0..<labels.count)
            order.shuffle(using: &rng)
            return order
        case .balanced:
            return BalancedSampling(labels: labels, modalities: modalities).draw(labels.count, using: &rng)
        case .weighted:
            return WeightedDraw(weights: ids.map { weights[$0] ?? 1 }).draw(ids.count, using: &rng)
        }
    }
}

/// Indices drawn with replacement in proportion to fixed weights (zero weights are never drawn).
public struct WeightedDraw: Sendable {
    public let weights: [Double]
    let cumulative: [Double]

    public init(weights: [Double]) {
        self.weights = weights
        var total = 0.0
        cumulative = weights.map { total += $0; return total }
    }

    /// The sum of the weights.
    public var total: Double { cumulative.last ?? 0 }

    /// `count` indices; none when no weight is above zero.
    public func draw(_ count: Int, using rng: inout SplitMix64) -> [Int] {
        guard total > 0 else { return [] }
        return (0..<count).map { _ in
            let u = Double.random(in: 0..<total, using: &rng)
            // The first index whose cumulative weight exceeds u.
            var lo = 0, hi = cumulative.count - 1
            while lo < hi {
                let mid = (lo + hi) / 2
                if cumulative[mid] > u { hi = mid } else { lo = mid + 1 }
            }
            return lo
        }
    }
}

/// Per-series draw weights that balance modalities and locations (`SeriesSampling.balanced`):
///
/// - every modality gets the same share of the draws (series of unknown modality form one group);
/// - within a modality, half the draws go to series with an aneurysm and half to series without (all to
///   one side when the modality has only one);
/// - the positive half is split equally among the locations present in that modality, and each
///   location's part equally among its series. A series with aneurysms at several locations collects a
///   part from each; one marked present with no location counts as a location of its own.
///
/// So with 30 CTA and 10 MRA series, or 40 series at the MCA and 2 at the basilar tip, each group is
/// drawn as often as the other: the network sees rare modalities and locations as often as common ones.
public struct BalancedSampling: Sendable {
    /// One weight per series; they sum to 1.
    public let weights: [Double]

    public init(labels: [[Bool]], modalities: [Int?]) {
        let n = labels.count
        var weights = [Double](repeating: 0, count: n)
        let groups = Dictionary(grouping: 0..<n) { i in i < modalities.count ? modalities[i] ?? -1 : -1 }
        for members in groups.values {
            // A series' "locations": the location columns it marks, or a 14th key when it only says present.
            let keys = members.map { i -> [Int] in
                let row = labels[i]
                let marked = (0..<min(13, row.count)).filter { row[$0] }
                return !marked.isEmpty ? marked : (row.count > 13 && row[13] ? [13] : [])
            }
            let positives = zip(members, keys).filter { !$0.1.isEmpty }
            let negatives = zip(members, keys).filter { $0.1.isEmpty }.map(\.0)
            let positiveShare = negatives.isEmpty ? 1.0 : positives.isEmpty ? 0.0 : 0.5
            var seriesAt: [Int: Int] = [:]
            for (_, k) in positives { for l in k { seriesAt[l, default: 0] += 1 } }
            let groupShare = 1.0 / Double(groups.count)
            for (i, k) in positives {
                let part = k.reduce(0.0) { $0 + 1.0 / Double(seriesAt[$1] ?? 1) } / Double(seriesAt.count)
                weights[i] = groupShare * positiveShare * part
            }
            for i in negatives { weights[i] = groupShare * (1 - positiveShare) / Double(negatives.count) }
        }
        self.weights = weights
    }

    /// `count` series indices drawn with replacement by the weights.
    public func draw(_ count: Int, using rng: inout SplitMix64) -> [Int] {
        WeightedDraw(weights: weights).draw(count, using: &rng)
    }
}
