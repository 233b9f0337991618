import Anatomy
import Dataset
import Foundation
import VolumeCore

/// One vessel piece: a polyline with a radius, labelled with the location its aneurysms count as.
public struct VesselSegment: Sendable {
    public var location: LocationLabel
    /// Centreline in patient coordinates (LPS, mm).
    public var points: [Vector3]
    public var radius: Double
    /// The radius at the last point, reached linearly over the last piece; nil: `radius` throughout.
    public var endRadius: Double?
    /// Centrelines drawn with this vessel's radius and label on which no aneurysm is placed: where a
    /// carotid or vertebral artery comes in from below the field of view, where the anterior
    /// communicating artery meets the ACAs.
    public var continuations: [[Vector3]] = []

    public init(location: LocationLabel, points: [Vector3], radius: Double, endRadius: Double? = nil) {
        self.location = location
        self.points = points
        self.radius = radius
        self.endRadius = endRadius
    }

    /// The radius at fraction `t` of piece `piece` (from `points[piece]` to `points[piece + 1]`).
    public func radius(piece: Int, t: Double) -> Double {
        guard let endRadius, piece == points.count - 2 else { return radius }
        return radius + (endRadius - radius) * max(0, min(1, t))
    }
}

/// How the synthetic arteries end (`willis synth --vessel-ends`).
public enum VesselEnds: String, CaseIterable, Codable, Sendable {
    /// Every centreline stops in a hemisphere of the vessel's full radius, where it ends inside the head
    /// (the MCAs, ACAs and PCAs, and the carotid and vertebral arteries where they enter), and the anterior
    /// communicating artery stops about a millimetre short of both ACAs, its two ends rounded too: what
    /// `willis synth` wrote up to stop 22. At 1.6 mm such a dead end looks like a small aneurysm.
    case rounded
    /// Closer to an angiogram: the MCAs, ACAs and PCAs narrow to a fifth of their radius over their last
    /// piece (as arteries thin out into their branches), the carotid and vertebral arteries come in from
    /// beyond the field of view, and the anterior communicating artery reaches both ACAs. The random
    /// draws are those of `rounded`, so one seed gives the same cases; aneurysms on a narrowing piece sit on
    /// its narrowed wall.
    case tapered
}

/// A Circle-of-Willis-like arterial tree with the 13 named locations, deformed per case.
/// Coordinates of the template are millimetres in LPS around the head centre
/// (x to the patient's left, y posterior, z superior).
public enum CircleOfWillis {
    /// How a template vessel meets the rest of the tree at its ends.
    enum Course {
        /// Both ends on other vessels.
        case joined
        /// Its last point ends inside the head (MCA, ACA, PCA).
        case ending
        /// Its first point is where it comes into the field of view from the neck.
        case entering
        /// The anterior communicating artery, between the two ACAs.
        case bridging
    }

    /// The template: (location, centreline, radius in mm, course).
    static let template: [(LocationLabel, [Vector3], Double, Course)] = {
        var t: [(LocationLabel, [Vector3], Double, Course)] = []
        for side in [1.0, -1.0] {  // +x is the patient's left
            let left = side > 0
            t.append((left ? .leftInfraclinoidICA : .rightInfraclinoidICA,
                      [Vector3(22 * side, -2, -55), Vector3(20 * side, 0, -38), Vector3(17 * side, -4, -24)], 2.4, .entering))
            t.append((left ? .leftSupraclinoidICA : .rightSupraclinoidICA,
                      [Vector3(17 * side, -4, -24), Vector3(15 * side, -1, -14), Vector3(14 * side, 2, -8)], 2.1, .joined))
            t.append((left ? .leftMCA : .rightMCA,
                      [Vector3(14 * side, 2, -8), Vector3(28 * side, 0, -6), Vector3(42 * side, 4, -2), Vector3(52 * side, 10, 6)], 1.6, .ending))
            t.append((left ? .leftACA : .rightACA,
                      [Vector3(14 * side, 2, -8), Vector3(6 * side, -12, -5), Vector3(2.5 * side, -22, 4), Vector3(2.5 * side, -36, 20)], 1.2, .ending))
            t.append((left ? .leftPosteriorCommunicating : .rightPosteriorCommunicating,
                      [Vector3(14 * side, 2, -8), Vector3(12 * side, 12, -10), Vector3(9 * side, 20, -12)], 0.8, .joined))
            // Posterior cerebral artery, counted as "Other Posterior Circulation".
            t.append((.otherPosteriorCirculation,
                      [Vector3(3 * side, 22, -14), Vector3(9 * side, 20, -12), Vector3(22 * side, 30, -8), Vector3(32 * side, 44, 0)], 1.2, .ending))
            // Vertebral artery.
            t.append((.otherPosteriorCirculation,
                      [Vector3(8 * side, 30, -75), Vector3(4 * side, 26, -58), Vector3(0.5 * side, 24, -50)], 1.5, .entering))
        }
        t.append((.anteriorCommunicating, [Vector3(2.5, -13, -4), Vector3(-2.5, -13, -4)], 0.8, .bridging))
        t.append((.otherPosteriorCirculation, [Vector3(0, 24, -50), Vector3(0, 23, -32), Vector3(0, 22, -20)], 1.8, .joined))  // basilar trunk
        t.append((.basilarTip, [Vector3(0, 22, -20), Vector3(0, 22, -14), Vector3(3, 22, -14)], 1.6, .joined))
        t.append((.basilarTip, [Vector3(0, 22, -14), Vector3(-3, 22, -14)], 1.6, .joined))
        return t
    }()

    /// The tree for one case: the template rotated (±8°), scaled (0.9–1.1), shifted (±6 mm)
    /// and jittered (±1.2 mm per point, ±15 % radius); its ends as `ends` says, which draws nothing.
    public static func make(ends: VesselEnds = .rounded, using rng: inout SplitMix64) -> [VesselSegment] {
        func uniform(_ a: Double, _ b: Double) -> Double { Double.random(in: a...b, using: &rng) }
        let (ax, ay, az) = (uniform(-0.14, 0.14), uniform(-0.14, 0.14), uniform(-0.14, 0.14))
        let scale = uniform(0.9, 1.1)
        let shift = Vector3(uniform(-6, 6), uniform(-6, 6), uniform(-6, 6))
        func rotate(_ p: Vector3) -> Vector3 {
            var q = Vector3(p.x, p.y * cos(ax) - p.z * sin(ax), p.y * sin(ax) + p.z * cos(ax))
            q = Vector3(q.x * cos(ay) + q.z * sin(ay), q.y, -q.x * sin(ay) + q.z * cos(ay))
            return Vector3(q.x * cos(az) - q.y * sin(az), q.x * sin(az) + q.y * cos(az), q.z)
        }
        // Shared junction points must move together, so jitter is a function of the template point.
        var jitter: [String: Vector3] = [:]
        func moved(_ p: Vector3) -> Vector3 {
            let key = String(format: "%.2f,%.2f,%.2f", p.x, p.y, p.z)
            if jitter[key] == nil { jitter[key] = Vector3(uniform(-1.2, 1.2), uniform(-1.2, 1.2), uniform(-1.2, 1.2)) }
            return rotate(p * scale) + shift + (jitter[key] ?? .zero)
        }
        var tree = template.map { location, points, radius, _ in
            VesselSegment(location: location, points: points.map(moved), radius: radius * scale * uniform(0.85, 1.15))
        }
        guard ends == .tapered else { return tree }
        for (index, course) in template.map(\.3).enumerated() {
            let segment = tree[index]
            switch course {
            case .joined:
                break
            case .ending:
                tree[index].endRadius = segment.radius / 5
            case .entering:
                // The first piece runs on 100 mm further, out of every field of view.
                let (a, b) = (segment.points[0], segment.points[1])
                tree[index].continuations = [[a + (a - b).normalized * 100, a]]
            case .bridging:
                // Each end joined to the nearest point of its side's ACA centreline (the template's first
                // point is on the patient's left).
                for (end, side) in [(segment.points[0], LocationLabel.leftACA), (segment.points[segment.points.count - 1], .rightACA)] {
                    guard let aca = tree.first(where: { $0.location == side }) else { continue }
                    let nearest = zip(aca.points, aca.points.dropFirst()).map { Phantom.nearestPoint(on: ($0, $1), to: end) }
                        .min { ($0 - end).length < ($1 - end).length }
                    if let nearest { tree[index].continuations.append([end, nearest]) }
                }
            }
        }
        return tree
    }
}

/// A saccular aneurysm: a sphere bulging from a named segment.
public struct Aneurysm: Sendable, Equatable {
    public var location: LocationLabel
    public var center: Vector3
    public var radius: Double

    /// Places an aneurysm of diameter `diameter` mm on a random point of a segment of `location`.
    public static func place(on tree: [VesselSegment], location: LocationLabel, diameter: Double,
                             using rng: inout SplitMix64) -> Aneurysm? {
        let candidates = tree.filter { $0.location == location && $0.points.count >= 2 }
        guard let segment = candidates.randomElement(using: &rng) else { return nil }
        let piece = Int.random(in: 0..<(segment.points.count - 1), using: &rng)
        let (a, b) = (segment.points[piece], segment.points[piece + 1])
        let t = Double.random(in: 0.2...0.8, using: &rng)
        let on = a + (b - a) * t
        let wall = segment.radius(piece: piece, t: t)
        let axis = (b - a).normalized
        // A random direction perpendicular to the vessel.
        var d = Vector3(Double.random(in: -1...1, using: &rng), Double.random(in: -1...1, using: &rng), Double.random(in: -1...1, using: &rng))
        d = (d - axis * d.dot(axis)).normalized
        if d.length < 0.5 { d = axis.cross(Vector3(0, 0, 1)).normalized }
        let r = diameter / 2
        return Aneurysm(location: location, center: on + d * (wall + r * 0.7), radius: r)
    }
}
