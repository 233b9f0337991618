import Dispatch
import Foundation
import VolumeCore

/// The reference notebook's preprocessing, applied to a correctly read volume:
/// `normalize_volume` (clip to [-1000, 1000], scale to [0, 1]) and `resize_volume`, which is
/// scikit-image's `resize(volume, shape, mode='constant', anti_aliasing=True)`.
public enum ReferencePreprocessing {
    /// The notebook's input shape (depth, height, width).
    public static let targetShape = (depth: 64, height: 128, width: 128)

    /// Clip to [-1000, 1000] HU and scale to [0, 1].
    public static func normalize(_ voxels: [Float]) -> [Float] {
        voxels.map { (min(max($0, -1000), 1000) + 1000) / 2000 }
    }

    /// normalize, then resize to `shape`, in one pass over the input (the clip and scale are applied
    /// as each voxel is first read, so no normalised copy of the volume is made).
    public static func apply(_ volume: Volume, to shape: (depth: Int, height: Int, width: Int) = targetShape) -> [Float] {
        volume.voxels.withUnsafeBufferPointer { v in
            resize(v, from: (volume.shape.depth, volume.shape.height, volume.shape.width), to: shape, normalizing: true)
        }
    }

    /// scikit-image's anti-aliased resize: a Gaussian blur with σ = max(0, (factor − 1) / 2) per axis
    /// (truncated at 4σ, zeros outside), then order-1 interpolation at pixel centres
    /// (c = (o + ½)·factor − ½, with 0 beyond the grid: scipy's 'grid-constant', which scikit-image
    /// uses for mode='constant'), then clipping to the input's range (widened to include 0).
    public static func resize(_ input: [Float], from inShape: (Int, Int, Int), to outShape: (depth: Int, height: Int, width: Int)) -> [Float] {
        precondition(input.count == inShape.0 * inShape.1 * inShape.2, "input does not fill its shape")
        return input.withUnsafeBufferPointer { resize($0, from: inShape, to: outShape, normalizing: false) }
    }

    /// Blur and interpolation are linear and separable, so each axis is one sparse matrix (`AxisResampler`)
    /// and the three commute. They run z, y, x: the z pass shrinks the volume most and, like the y pass,
    /// is a sum of whole weighted rows (contiguous, vectorised); the x pass, on the smallest data, is
    /// a short dot product per output voxel. Floor: reading the input once.
    static func resize(_ input: UnsafeBufferPointer<Float>, from inShape: (Int, Int, Int), to outShape: (depth: Int, height: Int, width: Int),
                       normalizing: Bool) -> [Float] {
        let (d, h, w) = inShape
        let (dd, hh, ww) = (outShape.depth, outShape.height, outShape.width)
        let az = AxisResampler(n: d, m: dd), ay = AxisResampler(n: h, m: hh), ax = AxisResampler(n: w, m: ww)
        @inline(__always) func normalize(_ x: Float) -> Float { (min(max(x, -1000), 1000) + 1000) / 2000 }

        // The clip range of the (normalised) input, widened to include the constant 0 used outside.
        let workers = ProcessInfo.processInfo.activeProcessorCount
        var extremes = [(Float, Float)](repeating: (.infinity, -.infinity), count: workers)
        extremes.withUnsafeMutableBufferPointer { out in
            let chunk = (input.count + workers - 1) / workers
            DispatchQueue.concurrentPerform(iterations: workers) { t in
                let start = t * chunk, end = min(input.count, start + chunk)
                guard start < end, let base = input.baseAddress else { return }
                // Plain loops over pointers: LLVM vectorises these (Swift's SIMD min/max are per-lane loops).
                var l = Float.infinity, u = -Float.infinity
                for i in start..<end {
                    let x = base[i]
                    l = x < l ? x : l
                    u = x > u ? x : u
                }
                out[t] = (l, u)
            }
        }
        var lo = extremes.map(\.0).min() ?? 0, hi = extremes.map(\.1).max() ?? 0
        if normalizing { (lo, hi) = (normalize(lo), normalize(hi)) }
        lo = min(lo, 0)
        hi = max(hi, 0)

        // z: [d][h][w] → [dd][h][w]. Tasks are blocks of rows; within one, output planes advance slowly
        // through the input planes, so each input row is fetched from memory about once.
        let rowBlock = 8
        var zOut = [Float](repeating: 0, count: dd * h * w)
        zOut.withUnsafeMutableBufferPointer { out in
            guard let dst = out.baseAddress, let src = input.baseAddress else { return }
            DispatchQueue.concurrentPerform(iterations: (h + rowBlock - 1) / rowBlock) { block in
                for o in 0..<dd {
                    let taps = az.taps[o]
                    for j in (block * rowBlock)..<min(h, (block + 1) * rowBlock) {
                        let target = dst + (o * h + j) * w
                        for (q, weight) in taps {
                            let row = src + (q * h + j) * w
                            Self.accumulate(row, weight, into: target, count: w, normalizing: normalizing)
                        }
                    }
                }
            }
        }
        // y: [dd][h][w] → [dd][hh][w], whole rows again.
        var yOut = [Float](repeating: 0, count: dd * hh * w)
        yOut.withUnsafeMutableBufferPointer { out in
            zOut.withUnsafeBufferPointer { zin in
                guard let dst = out.baseAddress, let src = zin.baseAddress else { return }
                DispatchQueue.concurrentPerform(iterations: dd) { k in
                    for o in 0..<hh {
                        let target = dst + (k * hh + o) * w
                        for (q, weight) in ay.taps[o] {
                            Self.accumulate(src + (k * h + q) * w, weight, into: target, count: w, normalizing: false)
                        }
                    }
                }
            }
        }
        // x: [dd][hh][w] → [dd][hh][ww], a dot product per output voxel; then the clip.
        var result = [Float](repeating: 0, count: dd * hh * ww)
        result.withUnsafeMutableBufferPointer { out in
            yOut.withUnsafeBufferPointer { yin in
                guard let dst = out.baseAddress, let src = yin.baseAddress else { return }
                let lines = dd * hh
                let chunks = min(lines, 64)
                DispatchQueue.concurrentPerform(iterations: chunks) { c in
                    for line in (c * lines / chunks)..<((c + 1) * lines / chunks) {
                        let row = src + line * w, target = dst + line * ww
                        for o in 0..<ww {
                            var acc: Float = 0
                            for (q, weight) in ax.taps[o] { acc += weight * row[q] }
                            target[o] = min(max(acc, lo), hi)
                        }
                    }
                }
            }
        }
        return result
    }

    /// target[0..<count] += weight × row[0..<count] (row clipped and scaled first when normalizing).
    @inline(__always)
    static func accumulate(_ row: UnsafePointer<Float>, _ weight: Float, into target: UnsafeMutablePointer<Float>, count: Int,
                           normalizing: Bool) {
        if normalizing {
            for i in 0..<count {
                var x = row[i]
                x = x < -1000 ? -1000 : x
                x = x > 1000 ? 1000 : x
                target[i] += weight * ((x + 1000) / 2000)
            }
        } else {
            for i in 0..<count { target[i] += weight * row[i] }
        }
    }
}

/// One axis of the resize: for each output position, the input taps and weights of
/// "Gaussian blur then linear interpolation", folded into one short list.
struct AxisResampler {
    let taps: [[(index: Int, weight: Float)]]

    init(n: Int, m: Int) {
        let factor = Double(n) / Double(m)
        let sigma = max(0, (factor - 1) / 2)
        // scipy.ndimage.gaussian_filter1d: radius int(4σ + 0.5), weights normalised to sum 1.
        let radius = Int(4 * sigma + 0.5)
        var kernel = (-radius...radius).map { sigma > 0 ? exp(-0.5 * Double($0 * $0) / (sigma * sigma)) : 1.0 }
        let total = kernel.reduce(0, +)
        kernel = kernel.map { $0 / total }
        func blurred(_ p: Int) -> [(Int, Double)] {
            (-radius...radius).compactMap { k in
                let q = p + k
                return q >= 0 && q < n ? (q, kernel[k + radius]) : nil  // zeros outside ('constant')
            }
        }
        var taps: [[(index: Int, weight: Float)]] = []
        for o in 0..<m {
            let c = (Double(o) + 0.5) * factor - 0.5
            let i0 = Int(c.rounded(.down))
            let t = c - Double(i0)
            var weights: [Int: Double] = [:]
            // Positions outside the grid hold the constant 0 ('grid-constant'): they add nothing.
            if i0 >= 0 && i0 < n { for (q, wq) in blurred(i0) { weights[q, default: 0] += (1 - t) * wq } }
            if t > 0, i0 + 1 >= 0, i0 + 1 < n { for (q, wq) in blurred(i0 + 1) { weights[q, default: 0] += t * wq } }
            taps.append(weights.sorted { $0.key < $1.key }.map { (index: $0.key, weight: Float($0.value)) })
        }
        self.taps = taps
    }

    @inline(__always)
    func apply(_ src: UnsafeBufferPointer<Float>, offset: Int, stride: Int,
               _ out: UnsafeMutableBufferPointer<Float>, outOffset: Int, outStride: Int) {
        for (o, list) in taps.enumerated() {
            var acc: Float = 0
            for (q, wq) in list { acc += wq * src[offset + q * stride] }
            out[outOffset + o * outStride] = acc
        }
    }
}


extension ReferencePreprocessing {
    /// Where the voxels of a resized array lie in the patient: the resize maps the source's extent onto
    /// the output's (voxel centres at (n_in / n_out) × (i + ½) − ½), so the output grid keeps the source's
    /// directions with its spacing scaled.
    public static func outputGeometry(source: Geometry, sourceShape: (depth: Int, height: Int, width: Int),
                                      shape: (depth: Int, height: Int, width: Int)) -> Geometry {
        let sx = Double(sourceShape.width) / Double(shape.width)
        let sy = Double(sourceShape.height) / Double(shape.height)
        let sz = Double(sourceShape.depth) / Double(shape.depth)
        let origin = source.patient(i: (sx - 1) / 2, j: (sy - 1) / 2, k: (sz - 1) / 2)
        return Geometry(origin: origin, spacing: Vector3(source.spacing.x * sx, source.spacing.y * sy, source.spacing.z * sz),
                        columnDirection: source.columnDirection, rowDirection: source.rowDirection,
                        sliceDirection: source.sliceDirection)
    }
}
