/// How far a column's probabilities can be taken at their word: the Brier score against that of a
/// constant guess at the positives' share, and, per band of predicted probability, how many series fell
/// in it, their mean probability and the share of them that were positive.
///
/// Why: AUC says only whether positives rank above negatives. A reader who sees "Aneurysm Present 0.7"
/// needs to know that about seven in ten such series hold one.
public struct Reliability: Sendable, Equatable {
    public struct Band: Sendable, Equatable {
        public var lower: Double
        public var upper: Double
        public var count: Int
        public var meanPredicted: Double
        public var observed: Double
    }

    /// Mean of (p − y)².
    public var brier: Double
    /// The Brier score of predicting the positives' share for every series.
    public var brierOfPrevalence: Double
    public var meanPredicted: Double
    public var prevalence: Double
    /// The non-empty bands of `bands` equal widths over [0, 1].
    public var bands: [Band]

    /// Nil without series, or with a probability that is not finite.
    public init?(probabilities p: [Double], labels: [Bool], bands count: Int = 5) {
        guard !p.isEmpty, p.count == labels.count, count > 0, p.allSatisfy(\.isFinite) else { return nil }
        let y = labels.map { $0 ? 1.0 : 0.0 }
        let n = Double(p.count)
        prevalence = y.reduce(0, +) / n
        meanPredicted = p.reduce(0, +) / n
        brier = zip(p, y).map { ($0 - $1) * ($0 - $1) }.reduce(0, +) / n
        brierOfPrevalence = prevalence * (1 - prevalence)
        var sums = [(count: Int, p: Double, y: Double)](repeating: (0, 0, 0), count: count)
        for (pi, yi) in zip(p, y) {
            let b = min(max(Int(pi * Double(count)), 0), count - 1)
            sums[b] = (sums[b].count + 1, sums[b].p + pi, sums[b].y + yi)
        }
        bands = sums.enumerated().filter { $0.element.count > 0 }.map { b, s in
            Band(lower: Double(b) / Double(count), upper: Double(b + 1) / Double(count), count: s.count,
                 meanPredicted: s.p / Double(s.count), observed: s.y / Double(s.count))
        }
    }
}
