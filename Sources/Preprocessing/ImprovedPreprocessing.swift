import Dispatch
import Foundation
import VolumeCore

/// How the improved mode prepares a series: one resampling onto an axis-aligned LPS grid at a fixed
/// spacing, centred on the head (canonical orientation, spacing and crop in one pass), then
/// modality-aware intensity normalisation.
public struct ImprovedPlan: Codable, Sendable, Equatable {
    public enum Intensity: Codable, Sendable, Equatable {
        /// CT: clip to a HU window and scale it to [0, 1].
        case window(low: Float, high: Float)
        /// MR (weights trained before `MRIntensity.foregroundScale`): clip to percentiles of the voxels
        /// above the crop's minimum, then z-score. In a crop where vessels are under 0.5 % of the voxels
        /// the upper clip flattens bright vessels (MRA, T1 post-contrast) to the brain's level.
        case robustZScore(lowPercentile: Double, highPercentile: Double)
        /// MR: `(x − floor) / (head − floor)` clipped to [0, cap]. `floor` is 0 (MR magnitudes' zero),
        /// or the crop's 1st percentile where that is negative; `head` is the median of the voxels
        /// brighter than half the crop's 99th percentile (the brain: vessels are too few to move
        /// either). The scanner's arbitrary gain cancels, brain sits near 1, and bright vessels keep
        /// their contrast up to `cap` times the brain.
        case foregroundScale(cap: Float)
    }

    /// The MR rule, chosen by the preparation settings.
    public enum MRIntensity: String, Codable, Sendable, Equatable {
        case zScore, foregroundScale
    }

    /// Output voxels (depth, height, width) along S, P, L... i.e. (z, y, x) of LPS.
    public var shape: [Int] = [96, 128, 128]
    /// Isotropic output spacing in mm.
    public var spacing: Double = 1.2
    /// Where the grid centre sits relative to the head's centroid, in mm (LPS). The Circle of Willis
    /// lies below the centre of the head.
    public var centreOffset: [Double] = [0, 0, -12]
    public var mrIntensity = MRIntensity.foregroundScale
    /// Samples per grid voxel along each axis (the image at `spacing / subdivision` over the grid's box).
    public var subdivision = 1

    public init() {}

    /// The intensity rule for a modality ("CT" / "CTA" window, anything else MR).
    public func intensity(forModality modality: String) -> Intensity {
        if modality.uppercased().hasPrefix("CT") { return .window(low: -100, high: 700) }
        switch mrIntensity {
        case .zScore: return .robustZScore(lowPercentile: 0.5, highPercentile: 99.5)
        case .foregroundScale: return .foregroundScale(cap: 8)
        }
    }
}

/// What the improved mode did, so that its output maps back to the patient and the original voxels.
public struct PreparationRecord: Codable, Sendable, Equatable {
    /// The output grid: voxel (i, j, k) of the prepared array sits at `output.patient(i, j, k)`.
    public var output: Geometry
    public var source: Geometry
    public var sourceShape: [Int]
    public var intensity: ImprovedPlan.Intensity
    /// Voxels of the output grid that fell outside the source (filled with its background).
    public var outsideFraction: Double
    /// Set when the intensities could not be normalised as the rule says (an MR with no head to scale
    /// by): what was done instead.
    public var intensityWarning: String?
    /// How the series' vessels show, read from its DICOM when the cache prepared it (nil in records
    /// written before it was kept, and where the preparation saw a volume alone).
    public var vesselContrast: DotFilter.VesselContrast?
}

public enum ImprovedPreprocessing {
    /// Resamples `volume` onto the plan's grid (trilinear) and normalises it. With a subdivision n > 1 the
    /// image is sampled on the grid's n-times finer twin: the same box, spacing / n, the n³ samples of
    /// grid voxel (i, j, k) at fine indices n·i … n·i + n − 1 (and so on per axis). The record's `output`
    /// is the grid itself, where targets and heatmaps live.
    public static func prepare(_ volume: Volume, modality: String, plan: ImprovedPlan = ImprovedPlan(),
                               normalize: Bool = true) -> (input: [Float], record: PreparationRecord) {
        let intensity = plan.intensity(forModality: modality)
        let (d, h, w) = (plan.shape[0], plan.shape[1], plan.shape[2])
        let background = volume.voxels.min() ?? 0
        let centre = headCentroid(volume) + Vector3(plan.centreOffset[0], plan.centreOffset[1], plan.centreOffset[2])
        let s = plan.spacing
        let origin = centre - Vector3(s * Double(w - 1) / 2, s * Double(h - 1) / 2, s * Double(d - 1) / 2)
        let grid = Geometry(origin: origin, spacing: Vector3(s, s, s), columnDirection: Vector3(1, 0, 0),
                            rowDirection: Vector3(0, 1, 0), sliceDirection: Vector3(0, 0, 1))
        let n = max(plan.subdivision, 1)
        let f = s / Double(n), inset = (s - f) / 2
        let sampled = n == 1 ? grid : Geometry(origin: origin - Vector3(inset, inset, inset), spacing: Vector3(f, f, f),
                                               columnDirection: Vector3(1, 0, 0), rowDirection: Vector3(0, 1, 0), sliceDirection: Vector3(0, 0, 1))
        let (fd, fh, fw) = (d * n, h * n, w * n)
        var out = [Float](repeating: background, count: fd * fh * fw)
        var outside = [Int](repeating: 0, count: fd)
        let src = volume
        out.withUnsafeMutableBufferPointer { o in
            outside.withUnsafeMutableBufferPointer { miss in
                DispatchQueue.concurrentPerform(iterations: fd) { k in
                    for j in 0..<fh { for i in 0..<fw {
                        let v = src.geometry.voxel(sampled.patient(i: Double(i), j: Double(j), k: Double(k)))
                        if let value = trilinear(src, v) { o[(k * fh + j) * fw + i] = value } else { miss[k] += 1 }
                    } }
                }
            }
        }
        let warning = normalize ? apply(intensity, to: &out, background: background) : nil
        let record = PreparationRecord(output: grid, source: volume.geometry,
                                       sourceShape: [volume.shape.depth, volume.shape.height, volume.shape.width],
                                       intensity: intensity, outsideFraction: Double(outside.reduce(0, +)) / Double(out.count),
                                       intensityWarning: warning)
        return (out, record)
    }

    /// Trilinear value at continuous voxel index v (x = i, y = j, z = k), nil outside the volume.
    static func trilinear(_ volume: Volume, _ v: Vector3) -> Float? {
        let (d, h, w) = (volume.shape.depth, volume.shape.height, volume.shape.width)
        guard v.x >= 0, v.y >= 0, v.z >= 0, v.x <= Double(w - 1), v.y <= Double(h - 1), v.z <= Double(d - 1) else { return nil }
        let i0 = min(Int(v.x), max(w - 2, 0)), j0 = min(Int(v.y), max(h - 2, 0)), k0 = min(Int(v.z), max(d - 2, 0))
        let tx = Float(v.x - Double(i0)), ty = Float(v.y - Double(j0)), tz = Float(v.z - Double(k0))
        let i1 = min(i0 + 1, w - 1), j1 = min(j0 + 1, h - 1), k1 = min(k0 + 1, d - 1)
        func lerp(_ a: Float, _ b: Float, _ t: Float) -> Float { a + (b - a) * t }
        let c00 = lerp(volume[k0, j0, i0], volume[k0, j0, i1], tx), c01 = lerp(volume[k0, j1, i0], volume[k0, j1, i1], tx)
        let c10 = lerp(volume[k1, j0, i0], volume[k1, j0, i1], tx), c11 = lerp(volume[k1, j1, i0], volume[k1, j1, i1], tx)
        return lerp(lerp(c00, c01, ty), lerp(c10, c11, ty), tz)
    }

    /// Centroid (patient mm) of the voxels brighter than the midpoint of the 1st and 99th percentiles:
    /// the head, whatever the modality's scale.
    static func headCentroid(_ volume: Volume) -> Vector3 {
        let step = max(1, volume.count / 100_000)
        let sample = stride(from: 0, to: volume.count, by: step).map { volume.voxels[$0] }.sorted()
        guard !sample.isEmpty else { return volume.geometry.patient(i: 0, j: 0, k: 0) }
        let threshold = (sample[sample.count / 100] + sample[sample.count * 99 / 100]) / 2
        var sum = Vector3.zero, n = 0.0
        let (d, h, w) = (volume.shape.depth, volume.shape.height, volume.shape.width)
        for k in stride(from: 0, to: d, by: 2) { for j in stride(from: 0, to: h, by: 2) { for i in stride(from: 0, to: w, by: 2) where volume[k, j, i] > threshold {
            sum = sum + Vector3(Double(i), Double(j), Double(k))
            n += 1
        } } }
        guard n > 0 else {
            return volume.geometry.patient(i: Double(w - 1) / 2, j: Double(h - 1) / 2, k: Double(d - 1) / 2)
        }
        return volume.geometry.patient(i: sum.x / n, j: sum.y / n, k: sum.z / n)
    }

    /// Normalises `values` in place; returns a warning when the rule could not be followed.
    static func apply(_ intensity: ImprovedPlan.Intensity, to values: inout [Float], background: Float) -> String? {
        switch intensity {
        case let .window(low, high):
            for i in values.indices { values[i] = (min(max(values[i], low), high) - low) / (high - low) }
            return nil
        case let .foregroundScale(cap):
            let step = max(1, values.count / 200_000)
            let sample = stride(from: 0, to: values.count, by: step).map { values[$0] }.filter(\.isFinite).sorted()
            guard sample.count > 100 else {
                for i in values.indices { values[i] = 0 }
                return "MR intensities: too few finite voxels to normalise; the input is blank"
            }
            let floor = min(sample[sample.count / 100], 0), top = sample[sample.count * 99 / 100]
            let foreground = sample.filter { $0 > floor + (top - floor) / 2 }
            let head = foreground.isEmpty ? top : foreground[foreground.count / 2]
            let scale = head - floor
            guard scale > 1e-6 * max(abs(head), 1) else {
                // Nothing in view (one value everywhere, or all at or below zero): keep what contrast there is.
                let lowest = sample.first ?? floor, range = max((sample.last ?? floor) - lowest, 1e-6)
                for i in values.indices {
                    let v = values[i]
                    values[i] = v.isFinite ? min(max((v - lowest) / range, 0), cap) : 0
                }
                return String(format: "MR intensities: no head found to scale by (99th percentile %.4g); scaled by the crop's range", top)
            }
            for i in values.indices {
                let v = values[i]
                values[i] = v.isFinite ? min(max((v - floor) / scale, 0), cap) : 0
            }
            return nil
        case let .robustZScore(lp, hp):
            // Statistics over the head (above background), robust to bright vessels and noise.
            let head = values.filter { $0 > background + 1e-3 }
            guard head.count > 10 else { return nil }
            let sorted = head.sorted()
            let lo = sorted[Int(Double(sorted.count - 1) * lp / 100)], hi = sorted[Int(Double(sorted.count - 1) * hp / 100)]
            let clipped = head.map { min(max($0, lo), hi) }
            let mean = clipped.reduce(0, +) / Float(clipped.count)
            let std = max((clipped.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Float(clipped.count)).squareRoot(), 1e-6)
            for i in values.indices { values[i] = (min(max(values[i], lo), hi) - mean) / std }
            return nil
        }
    }
}
