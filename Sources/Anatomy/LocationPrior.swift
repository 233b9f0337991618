import Foundation

/// Where in the head each location's aneurysms lie: one Gaussian per location over positions in the
/// prepared crop's frame (millimetres from the crop's centre along patient x, y, z), fitted to the
/// localizer points of the training series. It turns a detected point into the probability of each of
/// the 13 locations, so that a heatmap peak can be named without a vessel segmentation.
///
/// The frame is the crop's, not the scanner's: the crop is centred on the head by the same locator at
/// training and at prediction, so the same artery lies at roughly the same place in it.
public struct LocationPrior: Codable, Sendable, Equatable {
    public struct Component: Codable, Sendable, Equatable {
        public var location: LocationLabel
        /// Training points of this location.
        public var count: Int
        /// Mixture weight: (count + 1) / (points + 13), so a location never seen keeps some weight.
        public var weight: Double
        public var mean: [Double]
        /// Row-major 3×3.
        public var covariance: [Double]
    }

    /// One per location, in `LocationLabel.locations` order.
    public var components: [Component]

    /// Metadata key under which weights files carry the prior (as JSON).
    public static let metadataKey = "willis_location_prior"

    public enum FitError: Error, CustomStringConvertible {
        case noPoints
        case notFinite(index: Int)
        public var description: String {
            switch self {
            case .noPoints: return "no localizer points to fit a location prior to"
            case let .notFinite(index): return "localizer point \(index) has a position that is not finite"
            }
        }
    }

    /// Fits one Gaussian per location to `points` (positions in mm in the crop frame). Each covariance
    /// is shrunk towards an isotropic one of `ridgeMM` standard deviation with the weight of
    /// `pseudoCount` points, so a location with one or two points (or none: it then sits at the mean
    /// of all points) still has a proper, invertible Gaussian.
    public static func fit(_ points: [(position: [Double], location: LocationLabel)], ridgeMM: Double = 5,
                           pseudoCount: Double = 2) throws -> LocationPrior {
        guard !points.isEmpty else { throw FitError.noPoints }
        for (n, p) in points.enumerated() where p.position.count != 3 || !p.position.allSatisfy(\.isFinite) {
            throw FitError.notFinite(index: n)
        }
        let usable = points.filter { $0.location != .aneurysmPresent }
        guard !usable.isEmpty else { throw FitError.noPoints }
        let all = (0..<3).map { a in usable.map { $0.position[a] }.reduce(0, +) / Double(usable.count) }
        let components = LocationLabel.locations.map { location -> Component in
            let own = usable.filter { $0.location == location }.map(\.position)
            let mean = own.isEmpty ? all : (0..<3).map { a in own.map { $0[a] }.reduce(0, +) / Double(own.count) }
            var scatter = [Double](repeating: 0, count: 9)
            for p in own { for r in 0..<3 { for c in 0..<3 { scatter[r * 3 + c] += (p[r] - mean[r]) * (p[c] - mean[c]) } } }
            let covariance = (0..<9).map { e in
                (scatter[e] + (e % 4 == 0 ? pseudoCount * ridgeMM * ridgeMM : 0)) / (Double(own.count) + pseudoCount)
            }
            return Component(location: location, count: own.count,
                             weight: Double(own.count + 1) / Double(usable.count + LocationLabel.locations.count),
                             mean: mean, covariance: covariance)
        }
        return LocationPrior(components: components)
    }

    /// The probability of each of the 13 locations (summing to 1) for an aneurysm at `position` (mm in
    /// the crop frame). Computed in log space, so a point far from every location still gets the
    /// nearest ones rather than 0 / 0.
    public func posterior(at position: [Double]) -> [Double] {
        let logs = components.map { c -> Double in
            guard let (inverse, determinant) = Self.invert(c.covariance), determinant > 0 else { return -.infinity }
            let d = (0..<3).map { position[$0] - c.mean[$0] }
            var q = 0.0
            for r in 0..<3 { for k in 0..<3 { q += d[r] * inverse[r * 3 + k] * d[k] } }
            return log(c.weight) - 0.5 * q - 0.5 * log(determinant)
        }
        let top = logs.max() ?? -.infinity
        guard top.isFinite else { return [Double](repeating: 1 / Double(max(components.count, 1)), count: components.count) }
        let e = logs.map { exp($0 - top) }
        let sum = e.reduce(0, +)
        return e.map { $0 / sum }
    }

    /// The inverse and determinant of a row-major 3×3 matrix (nil when singular or not finite).
    static func invert(_ m: [Double]) -> ([Double], Double)? {
        let c00 = m[4] * m[8] - m[5] * m[7], c01 = m[5] * m[6] - m[3] * m[8], c02 = m[3] * m[7] - m[4] * m[6]
        let det = m[0] * c00 + m[1] * c01 + m[2] * c02
        guard det.isFinite, abs(det) > 1e-12 else { return nil }
        let inv = [c00, m[2] * m[7] - m[1] * m[8], m[1] * m[5] - m[2] * m[4],
                   c01, m[0] * m[8] - m[2] * m[6], m[2] * m[3] - m[0] * m[5],
                   c02, m[1] * m[6] - m[0] * m[7], m[0] * m[4] - m[1] * m[3]].map { $0 / det }
        return (inv, det)
    }

    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    /// Reads `json`; a prior with a component count other than 13 or malformed vectors is refused.
    public static func from(json: String) throws -> LocationPrior {
        let prior = try JSONDecoder().decode(LocationPrior.self, from: Data(json.utf8))
        guard prior.components.count == LocationLabel.locations.count,
              prior.components.allSatisfy({ $0.mean.count == 3 && $0.covariance.count == 9 && $0.weight > 0 }) else {
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "a location prior needs 13 components, each with a 3-vector mean, a 3×3 covariance and a positive weight"))
        }
        return prior
    }
}
