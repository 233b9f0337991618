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

    /// normalize, then resize to `shape`.
    public static func apply(_ volume: Volume, to shape: (depth: Int, height: Int, width: Int) = targetShape) -> [Float] {
        resize(normalize(volume.voxels), from: (volume.shape.depth, volume.shape.height, volume.shape.width), to: shape)
    }

    /// scikit-image's anti-aliased resize: a Gaussian blur with σ = max(0, (factor − 1) / 2) per axis
    /// (truncated at 4σ, zeros outside), then order-1 interpolation at pixel centres
    /// (c = (o + ½)·factor − ½, with 0 beyond the grid: scipy's 'grid-constant', which scikit-image
    /// uses for mode='constant'), then clipping to the input's range (widened to include 0). Both steps are separable, so each
    /// axis is done in one pass that blurs only the input positions its interpolation reads.
    public static func resize(_ input: [Float], from inShape: (Int, Int, Int), to outShape: (depth: Int, height: Int, width: Int)) -> [Float] {
        let (d, h, w) = inShape
        precondition(input.count == d * h * w, "input does not fill its shape")
        let ax = AxisResampler(n: w, m: outShape.width)
        let ay = AxisResampler(n: h, m: outShape.height)
        let az = AxisResampler(n: d, m: outShape.depth)
        // x: [d][h][w] → [d][h][w']
        let x = resample(input, lines: d * h, stride: 1, lineStep: w, outLineStep: outShape.width, outStride: 1, ax)
        // y: [d][h][w'] → [d][h'][w'] (lines are columns within each slice)
        var y = [Float](repeating: 0, count: d * outShape.height * outShape.width)
        let wp = outShape.width
        y.withUnsafeMutableBufferPointer { out in
            x.withUnsafeBufferPointer { src in
                DispatchQueue.concurrentPerform(iterations: d) { k in
                    for i in 0..<wp {
                        ay.apply(src, offset: k * h * wp + i, stride: wp, out, outOffset: k * outShape.height * wp + i, outStride: wp)
                    }
                }
            }
        }
        // z: [d][h'][w'] → [d'][h'][w']
        let plane = outShape.height * outShape.width
        var z = [Float](repeating: 0, count: outShape.depth * plane)
        z.withUnsafeMutableBufferPointer { out in
            y.withUnsafeBufferPointer { src in
                DispatchQueue.concurrentPerform(iterations: outShape.height) { j in
                    for i in 0..<outShape.width {
                        az.apply(src, offset: j * outShape.width + i, stride: plane, out, outOffset: j * outShape.width + i, outStride: plane)
                    }
                }
            }
        }
        // Clip to the input range, widened to include the constant 0 used outside (skimage's preserve_cval).
        var lo = input.min() ?? 0, hi = input.max() ?? 0
        lo = min(lo, 0)
        hi = max(hi, 0)
        for i in z.indices { z[i] = min(max(z[i], lo), hi) }
        return z
    }

    static func resample(_ input: [Float], lines: Int, stride: Int, lineStep: Int, outLineStep: Int, outStride: Int,
                         _ a: AxisResampler) -> [Float] {
        var out = [Float](repeating: 0, count: lines * outLineStep)
        out.withUnsafeMutableBufferPointer { o in
            input.withUnsafeBufferPointer { src in
                let chunks = min(lines, 64)
                DispatchQueue.concurrentPerform(iterations: chunks) { c in
                    var line = c * lines / chunks
                    let end = (c + 1) * lines / chunks
                    while line < end {
                        a.apply(src, offset: line * lineStep, stride: stride, o, outOffset: line * outLineStep, outStride: outStride)
                        line += 1
                    }
                }
            }
        }
        return out
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

