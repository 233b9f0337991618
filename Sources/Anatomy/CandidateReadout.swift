import VolumeCore

/// The prepared crop as the location prior sees it: its grid's shape (depth, height, width) and
/// isotropic spacing, with axes along the patient's x, y and z (improved mode).
public struct CropGrid: Sendable, Equatable {
    public var shape: [Int]
    public var spacing: Double

    public init(shape: [Int], spacing: Double) {
        self.shape = shape
        self.spacing = spacing
    }

    /// Where the grid voxel (i along the width, j, k along the depth; fractional allowed) lies in the
    /// crop's own frame: millimetres from the crop's centre along the grid's axes. The same artery lands
    /// at about the same place in this frame in every series, whatever the crop's shape or spacing.
    public func position(i: Double, j: Double, k: Double) -> [Double] {
        [(i - Double(shape[2] - 1) / 2) * spacing, (j - Double(shape[1] - 1) / 2) * spacing, (k - Double(shape[0] - 1) / 2) * spacing]
    }
}

/// Where a candidate aneurysm point came from.
public enum CandidateSource: String, Sendable, Codable, Equatable {
    /// A local maximum of the detector's heatmap.
    case heatmap
    /// A maximum of the Hessian dot filter on the series' own voxels (`DotFilter`), which finds many
    /// small aneurysms the heatmap ranks below its false peaks or misses (RESULTS.md, stop 25).
    case dotFilter = "dot-filter"
}

/// A candidate aneurysm point: a voxel of the prepared grid (i along the width, j, k along the depth)
/// and the probability that an aneurysm lies there: the heatmap's value there, or, once a candidate
/// classifier has looked at it, the two combined (`CandidateScoring`) and, when the classifier carries
/// one, calibrated (`CandidateCalibration`). Most are local maxima of the heatmap; `source` says.
public struct HeatmapPeak: Sendable, Equatable {
    public var voxel: [Int]
    public var probability: Double
    /// The candidate classifier's probability, when one scored this peak.
    public var classifier: Double?
    /// The heatmap's own value, when `probability` is no longer it.
    public var heatmap: Double?
    public var source: CandidateSource
    /// The probability of each of the 13 locations (`LocationLabel.locations` order) that a candidate
    /// classifier with a location head gave this point; nil: the readout names it by the location prior.
    public var locations: [Double]?

    public init(voxel: [Int], probability: Double, classifier: Double? = nil, heatmap: Double? = nil, source: CandidateSource = .heatmap,
                locations: [Double]? = nil) {
        self.voxel = voxel
        self.probability = probability
        self.classifier = classifier
        self.heatmap = heatmap
        self.source = source
        self.locations = locations
    }

    /// Several readings' candidates as one list: a voxel that several read once, with the mean of their
    /// probabilities and classifier scores, and of the location probabilities of those that named it
    /// (nil when none did); strongest first, equal probabilities in the order first seen.
    public static func mean(_ readings: [[HeatmapPeak]]) -> [HeatmapPeak] {
        var order: [[Int]] = []
        var seen: [[Int]: [HeatmapPeak]] = [:]
        for peak in readings.joined() {
            if seen[peak.voxel] == nil { order.append(peak.voxel) }
            seen[peak.voxel, default: []].append(peak)
        }
        func mean(_ values: [Double]) -> Double? { values.isEmpty ? nil : values.reduce(0, +) / Double(values.count) }
        let merged = order.compactMap { voxel -> HeatmapPeak? in
            guard let all = seen[voxel], let first = all.first else { return nil }
            let named = all.compactMap(\.locations)
            let locations = named.isEmpty ? nil : (0..<named[0].count).map { l in named.map { $0[l] }.reduce(0, +) / Double(named.count) }
            return HeatmapPeak(voxel: voxel, probability: mean(all.map(\.probability)) ?? first.probability, classifier: mean(all.compactMap(\.classifier)),
                               heatmap: first.heatmap, source: first.source, locations: locations)
        }
        return merged.enumerated()
            .sorted { $0.element.probability > $1.element.probability || ($0.element.probability == $1.element.probability && $0.offset < $1.offset) }
            .map(\.element)
    }

    /// `peaks` followed by the `points` (grid voxels, strongest first, from another source) that lie
    /// farther than `separationMM` from every peak and from every point kept before them, each with
    /// the heatmap's value at its voxel as its probability. A point beside a peak is the same place
    /// seen twice: the peak's classifier score and heatmap value already speak for it.
    public static func adding(_ points: [[Int]], source: CandidateSource, to peaks: [HeatmapPeak], heatmap: [Float], shape: [Int],
                              spacing: Double, separationMM: Double) -> [HeatmapPeak] {
        var out = peaks
        let reach = separationMM / spacing
        for v in points where isVoxel(v, inside: shape) {
            let near = out.contains { q in
                let d = (0..<3).map { Double(v[$0] - q.voxel[$0]) }
                return (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).squareRoot() <= reach
            }
            guard !near else { continue }
            let at = (v[2] * shape[1] + v[1]) * shape[2] + v[0]
            out.append(HeatmapPeak(voxel: v, probability: at < heatmap.count ? Double(heatmap[at]) : 0, source: source))
        }
        return out
    }

    /// Local maxima of `heatmap` (26-neighbourhood; `shape` depth, height, width), strongest first, at
    /// most `count`, at or above `threshold`. Ties go to the first voxel in memory order, so a plateau
    /// yields one peak.
    public static func find(_ heatmap: [Float], shape: [Int], count: Int, threshold: Float = 0.05) -> [HeatmapPeak] {
        let (d, h, w) = (shape[0], shape[1], shape[2])
        guard count > 0, heatmap.count == d * h * w else { return [] }
        var found: [HeatmapPeak] = []
        for k in 0..<d { for j in 0..<h { for i in 0..<w {
            let at = (k * h + j) * w + i
            let v = heatmap[at]
            guard v >= threshold else { continue }
            var peak = true
            search: for dk in -1...1 { for dj in -1...1 { for di in -1...1 where dk != 0 || dj != 0 || di != 0 {
                let (kk, jj, ii) = (k + dk, j + dj, i + di)
                guard kk >= 0, jj >= 0, ii >= 0, kk < d, jj < h, ii < w else { continue }
                let other = (kk * h + jj) * w + ii
                let u = heatmap[other]
                if u > v || (u == v && other < at) { peak = false; break search }
            } } }
            if peak { found.append(HeatmapPeak(voxel: [i, j, k], probability: Double(v))) }
        } } }
        return Array(found.sorted { $0.probability > $1.probability }.prefix(count))
    }
}

/// The 14 probabilities read from the detector's aneurysm heatmap rather than from its pooled outputs.
/// The strongest `count` peaks are taken as candidate aneurysms. Each candidate is named by the
/// location prior (where in the crop each artery's aneurysms lie), or by the candidate classifier's
/// location head when it has one (`HeatmapPeak.locations`), and the candidates are combined as
/// independent chances ("noisy or"):
/// - Aneurysm Present = 1 − Π (1 − p_k);
/// - location L = 1 − Π (1 − p_k · P(L | position_k)).
///
/// Why: the pooled outputs average the heatmap over each artery's predicted lumen, which a weak vessel
/// head blurs, and a single global logit ranks series by their overall look. Several peaks each with a
/// modest probability are evidence that adds up.
public struct CandidateReadout: Sendable, Equatable {
    public var prior: LocationPrior
    /// Peaks used per series.
    public var count: Int
    /// Peaks below this heatmap value are not candidates.
    public var threshold: Float

    public static let defaultCount = 3

    public init(prior: LocationPrior, count: Int = CandidateReadout.defaultCount, threshold: Float = 0.05) {
        self.prior = prior
        self.count = count
        self.threshold = threshold
    }

    /// The 14 probabilities (competition order) for these peaks of a heatmap on `grid`.
    public func probabilities(_ peaks: [HeatmapPeak], grid: CropGrid) -> [Double] {
        var absent = [Double](repeating: 1, count: LocationLabel.locations.count)
        var none = 1.0
        for peak in peaks.prefix(count) {
            // A candidate whose numbers are not finite (a cube with NaN in it, which prediction warns of) adds
            // no chance, and a naming that is not finite falls back on the prior: one NaN would otherwise make
            // all 14 of the series' probabilities NaN, which no metric can rank.
            let p = peak.probability.isFinite ? min(max(peak.probability, 0), 1) : 0
            let named = peak.locations.flatMap { $0.count == LocationLabel.locations.count && $0.allSatisfy(\.isFinite) ? $0 : nil }
                ?? prior.posterior(at: grid.position(i: Double(peak.voxel[0]), j: Double(peak.voxel[1]), k: Double(peak.voxel[2])))
            for (l, q) in named.enumerated() { absent[l] *= 1 - p * q }
            none *= 1 - p
        }
        return absent.map { 1 - $0 } + [1 - none]
    }

    /// The probabilities read from `heatmap` (on `grid`).
    public func probabilities(heatmap: [Float], grid: CropGrid) -> [Double] {
        probabilities(HeatmapPeak.find(heatmap, shape: grid.shape, count: count, threshold: threshold), grid: grid)
    }
}

/// How a candidate's probability is made from the heatmap's value p at its peak and the candidate
/// classifier's probability q of the cube around it.
public enum CandidateScoring: String, Sendable, CaseIterable, Codable {
    /// q alone: the classifier re-ranks the heatmap's peaks.
    case classifier
    /// √(p·q): a candidate needs both to be strong.
    case geometricMean = "geometric-mean"
    /// p alone (the classifier's q is recorded, not used).
    case heatmap

    /// A value that is not finite (a cube with NaN in it; prediction warns of such inputs) counts as 0.
    public func combine(heatmap p: Double, classifier q: Double) -> Double {
        let (p, q) = (p.isFinite ? p : 0, q.isFinite ? q : 0)
        switch self {
        case .classifier: return q
        case .geometricMean: return (max(p, 0) * max(q, 0)).squareRoot()
        case .heatmap: return p
        }
    }

    /// `peaks` with their classifier probabilities `q` (in the same order) scored by this rule,
    /// strongest first; equal scores keep the heatmap's order.
    public func rescore(_ peaks: [HeatmapPeak], classifier q: [Double]) -> [HeatmapPeak] {
        rescore(peaks, classifiers: [q], calibrations: [nil])
    }

    /// `peaks` scored by an ensemble of classifiers, `q[m][i]` being classifier m's probability for peak
    /// i: each classifier's score by this rule goes through its own calibration, when it has one, and a
    /// peak's probability is their mean (each map was fitted on its own classifier's scores, so the maps
    /// are applied before averaging, not after). The peak records the classifiers' mean q. Strongest
    /// first; equal scores keep the heatmap's order.
    public func rescore(_ peaks: [HeatmapPeak], classifiers q: [[Double]], calibrations: [CandidateCalibration?]) -> [HeatmapPeak] {
        let members = min(q.count, calibrations.count)
        guard members > 0 else { return peaks }
        var scored: [(order: Int, peak: HeatmapPeak)] = []
        for (n, peak) in peaks.enumerated() {
            var score = 0.0, meanQ = 0.0
            for m in 0..<members {
                let qm: Double = n < q[m].count ? q[m][n] : .nan
                let s = combine(heatmap: peak.probability, classifier: qm)
                let calibrated: Double = calibrations[m].map { $0(s) } ?? s
                score += calibrated / Double(members)
                meanQ += qm / Double(members)
            }
            scored.append((n, HeatmapPeak(voxel: peak.voxel, probability: score, classifier: meanQ, heatmap: peak.probability, source: peak.source,
                                          locations: peak.locations)))
        }
        return scored
            .sorted { $0.peak.probability > $1.peak.probability || ($0.peak.probability == $1.peak.probability && $0.order < $1.order) }
            .map(\.peak)
    }
}
