/// How far a competition score measured on a few series can be trusted: percentile bootstrap
/// intervals over the series (Efron), and the paired difference of two predictions of the same series.
/// With 40 positive series one series more or less found moves an AUC by a few hundredths, so a
/// difference between two runs means little until its interval leaves zero.
public enum ScoreUncertainty {
    public struct Interval: Sendable, Equatable {
        /// The statistic on the series as given.
        public var estimate: Double
        public var lower: Double
        public var upper: Double
        /// Resamples where the statistic was defined (every location and "Aneurysm Present" need both
        /// classes among the resampled series; where a location's AUC is undefined it is left out of the
        /// mean, as `CompetitionScore` does).
        public var defined: Int
        /// Paired differences: the share of resamples where the difference is above zero.
        public var shareAboveZero: Double?
    }

    /// The competition score's `level` percentile interval over `resamples` resamples of the series
    /// (with replacement). Nil when the score itself is undefined.
    public static func score<G: RandomNumberGenerator>(predictions: [[Double]], truth: [[Bool]], resamples: Int = 1000,
                                                       level: Double = 0.95, using rng: inout G) -> Interval? {
        score(predictions: predictions, truth: truth, rows: draws(predictions.count, resamples, using: &rng), level: level)
    }

    /// The same over given resamples, each a list of series indices.
    public static func score(predictions: [[Double]], truth: [[Bool]], rows resamples: [[Int]], level: Double = 0.95) -> Interval? {
        guard let estimate = CompetitionScore(predictions: predictions, truth: truth).score else { return nil }
        let values = resamples.compactMap { rows in
            CompetitionScore(predictions: rows.map { predictions[$0] }, truth: rows.map { truth[$0] }).score
        }
        return interval(estimate, values, level: level, paired: false)
    }

    /// score(a) − score(b) on the same series, and its interval over resamples that draw the same series
    /// for both (so that what the two share — which series are hard — cancels).
    public static func difference<G: RandomNumberGenerator>(_ a: [[Double]], _ b: [[Double]], truth: [[Bool]], resamples: Int = 1000,
                                                            level: Double = 0.95, using rng: inout G) -> Interval? {
        difference(a, b, truth: truth, rows: draws(a.count, resamples, using: &rng), level: level)
    }

    /// The same over given resamples, each a list of series indices.
    public static func difference(_ a: [[Double]], _ b: [[Double]], truth: [[Bool]], rows resamples: [[Int]], level: Double = 0.95) -> Interval? {
        precondition(a.count == b.count && a.count == truth.count, "both predictions and the labels must cover the same series")
        guard let sa = CompetitionScore(predictions: a, truth: truth).score, let sb = CompetitionScore(predictions: b, truth: truth).score else { return nil }
        let values = resamples.compactMap { rows -> Double? in
            let t = rows.map { truth[$0] }
            guard let x = CompetitionScore(predictions: rows.map { a[$0] }, truth: t).score,
                  let y = CompetitionScore(predictions: rows.map { b[$0] }, truth: t).score else { return nil }
            return x - y
        }
        return interval(sa - sb, values, level: level, paired: true)
    }

    static func draws<G: RandomNumberGenerator>(_ n: Int, _ resamples: Int, using rng: inout G) -> [[Int]] {
        (0..<resamples).map { _ in (0..<n).map { _ in Int.random(in: 0..<n, using: &rng) } }
    }

    static func interval(_ estimate: Double, _ values: [Double], level: Double, paired: Bool) -> Interval? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        func quantile(_ q: Double) -> Double {
            // Linear interpolation between order statistics (numpy's default).
            let position = q * Double(sorted.count - 1)
            let i = Int(position), f = position - Double(i)
            return i + 1 < sorted.count ? sorted[i] + (sorted[i + 1] - sorted[i]) * f : sorted[i]
        }
        let tail = (1 - level) / 2
        return Interval(estimate: estimate, lower: quantile(tail), upper: quantile(1 - tail), defined: values.count,
                        shareAboveZero: paired ? Double(values.filter { $0 > 0 }.count) / Double(values.count) : nil)
    }
}
