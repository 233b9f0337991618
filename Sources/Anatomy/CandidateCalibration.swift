import Foundation

/// Maps a candidate's score (its probability under a `CandidateScoring` rule) to the chance that an
/// aneurysm lies there, as measured on peaks that neither stage trained on:
/// σ(slope · logit(s) + intercept), Platt scaling on the score's logit.
///
/// Why: the candidate classifier trains on batches that are half aneurysms, while fewer than one peak
/// in thirty is one (33 of 2000 validation peaks, stop 19), so its q, and √(p·q), run far too high.
/// Combined over a series' peaks as independent chances, that put every series' Aneurysm Present above
/// 0.5 (stop 18, held out), so a threshold of 0.5 told nothing. The map increases with the score, so each series' peaks keep their order.
public struct CandidateCalibration: Codable, Sendable, Equatable {
    public var slope: Double
    public var intercept: Double
    /// The peaks it was fitted on, the aneurysms among them, and where they came from.
    public var peaks: Int
    public var positives: Int
    public var source: String

    /// The safetensors metadata key of a classifier's calibrations: JSON, one per `CandidateScoring` rule.
    public static let metadataKey = "willis_candidate_calibration"

    public init(slope: Double, intercept: Double, peaks: Int, positives: Int, source: String) {
        self.slope = slope
        self.intercept = intercept
        self.peaks = peaks
        self.positives = positives
        self.source = source
    }

    /// The calibrated probability of a score; a score that is not finite counts as 0, as in `CandidateScoring`.
    public func callAsFunction(_ score: Double) -> Double {
        let z = slope * Self.logit(score.isFinite ? score : 0) + intercept
        return 1 / (1 + exp(-z))
    }

    /// Scores of exactly 0 or 1 (a heatmap value rounded off, a classifier saturated) get a finite logit.
    static func logit(_ s: Double) -> Double {
        let c = min(max(s, 1e-6), 1 - 1e-6)
        return log(c / (1 - c))
    }

    /// The maximum-likelihood map for these scores and labels (Newton's method on the logistic
    /// log-likelihood, with a ridge of `ridge` on the slope alone so that separable labels still give a
    /// finite map). The intercept is not penalised, so on the fitting data the mean calibrated
    /// probability equals the share of positives. Nil when the labels are all alike, or when the slope
    /// comes out not positive: a map that reverses the scores' order calibrates nothing.
    public static func fit(scores: [Double], labels: [Bool], ridge: Double = 1e-3, source: String = "") -> CandidateCalibration? {
        guard scores.count == labels.count, labels.contains(true), labels.contains(false) else { return nil }
        let x = scores.map { logit($0.isFinite ? $0 : 0) }
        let y = labels.map { $0 ? 1.0 : 0.0 }
        func objective(_ a: Double, _ b: Double) -> Double {
            var l = -0.5 * ridge * a * a
            for (xi, yi) in zip(x, y) {
                let z = a * xi + b
                // log σ(z) and log(1 − σ(z)), without overflow for large |z|.
                l += yi * -softplus(-z) + (1 - yi) * -softplus(z)
            }
            return l
        }
        var (a, b) = (1.0, 0.0)
        var current = objective(a, b)
        for _ in 0..<100 {
            var (ga, gb) = (-ridge * a, 0.0)
            var (haa, hab, hbb) = (ridge, 0.0, 0.0)
            for (xi, yi) in zip(x, y) {
                let p = 1 / (1 + exp(-(a * xi + b)))
                let w = p * (1 - p)
                ga += (yi - p) * xi
                gb += yi - p
                haa += w * xi * xi
                hab += w * xi
                hbb += w
            }
            let det = haa * hbb - hab * hab
            guard det > 0, det.isFinite else { break }
            // Newton's step, halved until the log-likelihood does not fall.
            var (da, db) = ((hbb * ga - hab * gb) / det, (haa * gb - hab * ga) / det)
            var next = objective(a + da, b + db)
            var halvings = 0
            while !(next >= current), halvings < 30 {
                da /= 2
                db /= 2
                next = objective(a + da, b + db)
                halvings += 1
            }
            guard next >= current else { break }
            (a, b, current) = (a + da, b + db, next)
            if abs(da) < 1e-10, abs(db) < 1e-10 { break }
        }
        guard a > 0, a.isFinite, b.isFinite else { return nil }
        return CandidateCalibration(slope: a, intercept: b, peaks: scores.count, positives: labels.filter { $0 }.count, source: source)
    }

    static func softplus(_ z: Double) -> Double { z > 0 ? z + log1p(exp(-z)) : log1p(exp(z)) }
}
