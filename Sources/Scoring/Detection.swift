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
    public struct FROCPoint: Sendable, Equatable {
        public var threshold: Double
        public var falsePositivesPerSeries: Double
        public var sensitivity: Double
    }

    public let aneurysms: Int
    public let series: Int
    /// Aneurysms found by the strongest candidate, and by any of the `k` strongest, per k (1-based).
    public let foundAtRank: [Int]
    public let froc: [FROCPoint]

    /// `truth` and `candidates` by series (every series scored is a key of `candidates`; series without
    /// aneurysms have empty truth).
    public init(truth: [String: [[Double]]], candidates: [String: [Candidate]], radius: Double = 7, maxRank: Int = 5) {
        func near(_ a: [Double], _ b: [Double]) -> Bool {
            zip(a, b).map { ($0 - $1) * ($0 - $1) }.reduce(0, +) <= radius * radius
        }
        var aneurysms = 0
        var rankCounts = [Int](repeating: 0, count: maxRank)
        // (probability, is a hit on a new aneurysm, is a false positive) per candidate, over every series.
        var events: [(p: Double, hit: Int, fp: Int)] = []
        for (uid, list) in candidates {
            let points = truth[uid] ?? []
            aneurysms += points.count
            let sorted = list.sorted { $0.probability > $1.probability }
            for point in points {
                if let rank = sorted.prefix(maxRank).firstIndex(where: { near($0.lps, point) }) {
                    for r in rank..<maxRank { rankCounts[r] += 1 }
                }
            }
            var found = Set<Int>()
            for c in sorted {
                let hits = points.indices.filter { near(c.lps, points[$0]) }
                let new = hits.filter { !found.contains($0) }
                found.formUnion(hits)
                events.append((c.probability, new.count, hits.isEmpty ? 1 : 0))
            }
        }
        self.aneurysms = aneurysms
        self.series = candidates.count
        foundAtRank = rankCounts
        var froc: [FROCPoint] = []
        var hits = 0, fps = 0
        let ordered = events.sorted { $0.p > $1.p }
        for (n, e) in ordered.enumerated() {
            hits += e.hit
            fps += e.fp
            // One point per distinct threshold.
            if n + 1 == ordered.count || ordered[n + 1].p < e.p {
                froc.append(FROCPoint(threshold: e.p, falsePositivesPerSeries: Double(fps) / Double(max(candidates.count, 1)),
                                      sensitivity: aneurysms > 0 ? Double(hits) / Double(aneurysms) : 0))
            }
        }
        self.froc = froc
    }

    /// The sensitivity at the lowest threshold whose false positives per series stay within `fp`.
    public func sensitivity(atFalsePositivesPerSeries fp: Double) -> Double {
        froc.last { $0.falsePositivesPerSeries <= fp }?.sensitivity ?? 0
    }
}
