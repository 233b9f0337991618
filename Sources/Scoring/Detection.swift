import Foundation

/// How well candidate points find the aneurysms: a candidate within `radius` mm of an aneurysm finds
/// it. Sensitivity at the top-k candidates, and FROC points (sensitivity against false positives per
/// series as the candidate threshold falls).
public struct DetectionScore: Sendable {
    public struct Candidate: Sendable {
        public var lps: [Double]
        public var probability: Double
        public init(lps: [Double], probability: Double) {
            self.lps = lps
            self.probability = probability
        }
    }
    /// An aneurysm's centre (LPS mm); one not `counted` (outside the size range scored) neither adds to
    /// the sensitivity nor makes a candidate on it a false positive.
    public struct Target: Sendable {
        public var lps: [Double]
        public var counted: Bool
        public init(lps: [Double], counted: Bool = true) {
            self.lps = lps
            self.counted = counted
        }
    }
    public struct FROCPoint: Sendable, Equatable {
        public var threshold: Double
        public var falsePositivesPerSeries: Double
        /// False positives in the series without any aneurysm, per such series.
        public var falsePositivesPerNegativeSeries: Double
        public var sensitivity: Double
    }

    public let aneurysms: Int
    public let series: Int
    /// Series scored that have no aneurysm.
    public let negativeSeries: Int
    /// Aneurysms found by the strongest candidate, and by any of the `k` strongest, per k (1-based).
    public let foundAtRank: [Int]
    public let froc: [FROCPoint]

    /// `truth` and `candidates` by series (every series scored is a key of `candidates`; series without
    /// aneurysms have empty truth).
    public init(truth: [String: [[Double]]], candidates: [String: [Candidate]], radius: Double = 7, maxRank: Int = 5) {
        self.init(targets: truth.mapValues { $0.map { Target(lps: $0) } }, candidates: candidates, radius: radius, maxRank: maxRank)
    }

    /// As above, with aneurysms that may be left out of the sensitivity (`Target.counted`).
    public init(targets truth: [String: [Target]], candidates: [String: [Candidate]], radius: Double = 7, maxRank: Int = 5) {
        func near(_ a: [Double], _ b: [Double]) -> Bool {
            zip(a, b).map { ($0 - $1) * ($0 - $1) }.reduce(0, +) <= radius * radius
        }
        var aneurysms = 0, negativeSeries = 0
        var rankCounts = [Int](repeating: 0, count: maxRank)
        // (probability, hits on new counted aneurysms, false positive, in a negative series) per candidate.
        var events: [(p: Double, hit: Int, fp: Int, negative: Bool)] = []
        for (uid, list) in candidates {
            let points = truth[uid] ?? []
            let negative = points.isEmpty
            if negative { negativeSeries += 1 }
            aneurysms += points.filter(\.counted).count
            let sorted = list.sorted { $0.probability > $1.probability }
            for point in points where point.counted {
                if let rank = sorted.prefix(maxRank).firstIndex(where: { near($0.lps, point.lps) }) {
                    for r in rank..<maxRank { rankCounts[r] += 1 }
                }
            }
            var found = Set<Int>()
            for c in sorted {
                let hits = points.indices.filter { near(c.lps, points[$0].lps) }
                let new = hits.filter { !found.contains($0) && points[$0].counted }
                found.formUnion(hits)
                events.append((c.probability, new.count, hits.isEmpty ? 1 : 0, negative))
            }
        }
        self.aneurysms = aneurysms
        self.series = candidates.count
        self.negativeSeries = negativeSeries
        foundAtRank = rankCounts
        var froc: [FROCPoint] = []
        var hits = 0, fps = 0, negativeFPs = 0
        let ordered = events.sorted { $0.p > $1.p }
        for (n, e) in ordered.enumerated() {
            hits += e.hit
            fps += e.fp
            if e.negative { negativeFPs += e.fp }
            // One point per distinct threshold.
            if n + 1 == ordered.count || ordered[n + 1].p < e.p {
                froc.append(FROCPoint(threshold: e.p, falsePositivesPerSeries: Double(fps) / Double(max(candidates.count, 1)),
                                      falsePositivesPerNegativeSeries: Double(negativeFPs) / Double(max(negativeSeries, 1)),
                                      sensitivity: aneurysms > 0 ? Double(hits) / Double(aneurysms) : 0))
            }
        }
        self.froc = froc
    }

    /// The sensitivity at the lowest threshold whose false positives per series stay within `fp`.
    public func sensitivity(atFalsePositivesPerSeries fp: Double) -> Double {
        froc.last { $0.falsePositivesPerSeries <= fp }?.sensitivity ?? 0
    }

    /// The sensitivity at the lowest threshold whose false positives in the negative series stay within
    /// `fp` per negative series (the "one false positive per 10 negative series" is 0.1).
    public func sensitivity(atFalsePositivesPerNegativeSeries fp: Double) -> Double {
        froc.last { $0.falsePositivesPerNegativeSeries <= fp }?.sensitivity ?? 0
    }
}
