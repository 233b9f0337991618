import Anatomy
import Dataset
import Dispatch
import Foundation
import VolumeCore

/// How each modality shows tissue and vessels (stored units: HU for CT, arbitrary for MR).
public struct ContrastModel: Sendable {
    public var air, skull, brain, vessel: Float
    public var noise: Float

    public static func of(_ modality: Modality, using rng: inout SplitMix64) -> ContrastModel {
        // MR scanners put intensities on arbitrary scales: vary the gain per case.
        let gain = Float(Double.random(in: 0.6...1.8, using: &rng))
        switch modality {
        case .cta: return ContrastModel(air: -1000, skull: 1100, brain: 35, vessel: Float(Double.random(in: 320...480, using: &rng)), noise: 12)
        case .mra: return ContrastModel(air: 0, skull: 40 * gain, brain: 120 * gain, vessel: 900 * gain, noise: 6 * gain)
        case .mriT2: return ContrastModel(air: 0, skull: 90 * gain, brain: 480 * gain, vessel: 50 * gain, noise: 12 * gain)  // flow voids
        case .mriT1post: return ContrastModel(air: 0, skull: 150 * gain, brain: 300 * gain, vessel: 650 * gain, noise: 9 * gain)
        }
    }
}

/// A rendered case: intensities and the 13-label vessel map in one geometry.
public struct RenderedCase: Sendable {
    public var volume: Volume
    /// 0 outside vessels, else `LocationLabel.rawValue + 1` (1…13, as the RSNA cowseg files).
    public var vesselLabels: [UInt8]
}

public enum Phantom {
    /// Renders head, vessels and aneurysms into `shape` voxels placed by `geometry`.
    public static func render(shape: (depth: Int, height: Int, width: Int), geometry g: Geometry, tree: [VesselSegment],
                              aneurysms: [Aneurysm], contrast c: ContrastModel, seed: UInt64) throws -> RenderedCase {
        let (d, h, w) = shape
        let n = d * h * w
        var vessel = [Float](repeating: 0, count: n)
        var labels = [UInt8](repeating: 0, count: n)
        let edge = min(g.spacing.x, g.spacing.y, g.spacing.z)

        // Vessels and aneurysms: only voxels inside each shape's bounding box are visited.
        // `surface(p)`: p's distance from the shape's axis or centre, and the shape's radius there.
        func paint(low: Vector3, high: Vector3, label: UInt8, surface: (Vector3) -> (distance: Double, radius: Double)) {
            var lo = [Int.max, Int.max, Int.max], hi = [Int.min, Int.min, Int.min]
            for cx in [low.x, high.x] { for cy in [low.y, high.y] { for cz in [low.z, high.z] {
                let v = g.voxel(Vector3(cx, cy, cz))
                for (a, x) in [v.x, v.y, v.z].enumerated() {
                    lo[a] = min(lo[a], Int(x.rounded(.down)) - 1)
                    hi[a] = max(hi[a], Int(x.rounded(.up)) + 1)
                }
            } } }
            let sizes = [w, h, d]
            for a in 0..<3 { lo[a] = max(0, lo[a]); hi[a] = min(sizes[a] - 1, hi[a]) }
            guard lo[0] <= hi[0], lo[1] <= hi[1], lo[2] <= hi[2] else { return }
            for k in lo[2]...hi[2] { for j in lo[1]...hi[1] { for i in lo[0]...hi[0] {
                let p = g.patient(i: Double(i), j: Double(j), k: Double(k))
                // Partial volume: a soft edge one voxel wide.
                let (distance, radius) = surface(p)
                let f = Float(max(0, min(1, 0.5 + (radius - distance) / edge)))
                let at = (k * h + j) * w + i
                if f > vessel[at] { vessel[at] = f }
                if f >= 0.5 && labels[at] == 0 { labels[at] = label }
            } } }
        }
        for s in tree {
            let label = UInt8(s.location.rawValue + 1)
            func piece(_ a: Vector3, _ b: Vector3, radius: @escaping (Double) -> Double) {
                let r = max(radius(0), radius(1))
                let margin = Vector3(r + edge, r + edge, r + edge)
                let low = Vector3(min(a.x, b.x), min(a.y, b.y), min(a.z, b.z)) - margin
                let high = Vector3(max(a.x, b.x), max(a.y, b.y), max(a.z, b.z)) + margin
                paint(low: low, high: high, label: label) { p in
                    let t = projection(p, a, b)
                    return ((p - (a + (b - a) * t)).length, radius(t))
                }
            }
            for (index, (a, b)) in zip(s.points, s.points.dropFirst()).enumerated() {
                piece(a, b) { s.radius(piece: index, t: $0) }
            }
            for line in s.continuations {
                for (a, b) in zip(line, line.dropFirst()) { piece(a, b) { _ in s.radius } }
            }
        }
        for an in aneurysms {
            let m = Vector3(an.radius + edge, an.radius + edge, an.radius + edge)
            paint(low: an.center - m, high: an.center + m, label: UInt8(an.location.rawValue + 1)) { (($0 - an.center).length, an.radius) }
        }

        // Head (skull shell around brain) and noise, slice by slice in parallel, seeded per slice.
        let semi = Vector3(72, 92, 85), centre = Vector3(0, 5, -10), skull = 6.0
        var voxels = [Float](repeating: 0, count: n)
        voxels.withUnsafeMutableBufferPointer { out in
            vessel.withUnsafeBufferPointer { vf in
                DispatchQueue.concurrentPerform(iterations: d) { k in
                    var rng = SplitMix64(seed: seed, stream: UInt64(k))
                    for j in 0..<h { for i in 0..<w {
                        let p = g.patient(i: Double(i), j: Double(j), k: Double(k)) - centre
                        let r = ((p.x / semi.x) * (p.x / semi.x) + (p.y / semi.y) * (p.y / semi.y) + (p.z / semi.z) * (p.z / semi.z)).squareRoot()
                        let inner = 1 - skull / semi.x
                        let tissue: Float = r > 1 ? c.air : r > inner ? c.skull : c.brain
                        let at = (k * h + j) * w + i
                        let f = r > inner ? 0 : vf[at]  // vessels live inside the brain
                        // Box–Muller noise from the per-slice generator.
                        let u1 = max(Double(rng.next() >> 11) / Double(1 << 53), 1e-12), u2 = Double(rng.next() >> 11) / Double(1 << 53)
                        let noise = Float((-2 * log(u1)).squareRoot() * cos(2 * .pi * u2))
                        out[at] = tissue * (1 - f) + c.vessel * f + c.noise * noise
                    } }
                }
            }
        }
        return RenderedCase(volume: try Volume(shape: shape, voxels: voxels, geometry: g), vesselLabels: labels)
    }

    /// Where the point of segment a–b nearest to p lies, as a fraction of the way from a to b.
    static func projection(_ p: Vector3, _ a: Vector3, _ b: Vector3) -> Double {
        let ab = b - a
        return max(0, min(1, (p - a).dot(ab) / max(ab.dot(ab), 1e-12)))
    }

    /// The point of segment `on` nearest to `p`.
    static func nearestPoint(on segment: (Vector3, Vector3), to p: Vector3) -> Vector3 {
        let (a, b) = segment
        return a + (b - a) * projection(p, a, b)
    }
}
