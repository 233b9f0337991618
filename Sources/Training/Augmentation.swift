import Dataset
import Foundation

/// Random changes applied to training inputs; the defaults leave them off (the notebook had none).
public struct Augmentation: Codable, Sendable, Equatable {
    /// Left-right flip with Left/Right label swap, with probability 0.5.
    public var flipLeftRight = false
    /// Largest in-plane rotation, degrees (uniform in ±).
    public var rotationDegrees = 0.0
    /// Largest relative scale change (uniform in 1 ± this).
    public var scale = 0.0
    /// Largest intensity shift (added) and relative gain change (multiplied).
    public var intensityShift: Float = 0
    public var intensityGain: Float = 0
    /// Standard deviation of added Gaussian noise.
    public var noise: Float = 0

    public init() {}

    public var isIdentity: Bool {
        !flipLeftRight && rotationDegrees == 0 && scale == 0 && intensityShift == 0 && intensityGain == 0 && noise == 0
    }

    /// One draw of each enabled augmentation's parameters, the noise excepted (it is drawn voxel by voxel
    /// as it is added).
    public struct Draw: Sendable, Equatable {
        public var flip = false
        public var angle = 0.0
        public var scale = 1.0
        public var shift: Float = 0
        public var gain: Float = 1
    }

    /// The parameters `apply(_:shape:using:)` draws before any noise, in the same order.
    public func draw(using rng: inout SplitMix64) -> Draw {
        var d = Draw()
        if flipLeftRight { d.flip = Bool.random(using: &rng) }
        if rotationDegrees > 0 || scale > 0 {
            d.angle = Double.random(in: -rotationDegrees...rotationDegrees, using: &rng) * .pi / 180
            d.scale = 1 + Double.random(in: -scale...scale, using: &rng)
        }
        if intensityShift > 0 || intensityGain > 0 || noise > 0 {
            d.shift = intensityShift > 0 ? Float.random(in: -intensityShift...intensityShift, using: &rng) : 0
            d.gain = intensityGain > 0 ? 1 + Float.random(in: -intensityGain...intensityGain, using: &rng) : 1
        }
        return d
    }

    /// `sample` changed by one random draw of each enabled augmentation.
    public func apply(_ sample: Sample, shape: [Int], using rng: inout SplitMix64) -> Sample {
        let d = draw(using: &rng)
        guard noise > 0 else { return apply(d, to: sample, shape: shape) }
        var s = apply(d, to: sample, shape: shape, intensity: false)
        for i in s.input.indices {
            var v = s.input[i] * d.gain + d.shift
            // Box–Muller from the same generator, so a run is reproducible and resumable.
            let u1 = max(Double(rng.next() >> 11) / Double(1 << 53), 1e-12), u2 = Double(rng.next() >> 11) / Double(1 << 53)
            v += noise * Float((-2 * log(u1)).squareRoot() * cos(2 * .pi * u2))
            s.input[i] = v
        }
        return s
    }

    /// `sample` changed by the drawn parameters (no noise): what `apply(_:shape:using:)` gives when
    /// `noise` is 0, without touching a generator, so the samples of a batch can be changed in parallel
    /// once their parameters are drawn in order.
    public func apply(_ d: Draw, to sample: Sample, shape: [Int], intensity: Bool = true) -> Sample {
        var s = sample
        if d.flip { s = s.flippedLeftRight(shape: shape) }
        if rotationDegrees > 0 || scale > 0 {
            s.input = Self.rotateAndScale(s.input, shape: shape, angle: d.angle, scale: d.scale)
        }
        if intensity && (intensityShift > 0 || intensityGain > 0 || noise > 0) {
            let (gain, shift) = (d.gain, d.shift)
            s.input.withUnsafeMutableBufferPointer { values in
                for i in values.indices { values[i] = values[i] * gain + shift }
            }
        }
        return s
    }

    /// Rotation about the depth axis (in the axial plane) and isotropic in-plane scaling about the
    /// centre, by bilinear resampling of each slice; outside the input reads the edge value.
    static func rotateAndScale(_ input: [Float], shape: [Int], angle: Double, scale: Double) -> [Float] {
        let (d, h, w) = (shape[0], shape[1], shape[2])
        let (cy, cx) = (Double(h - 1) / 2, Double(w - 1) / 2)
        let (c, s) = (cos(angle) / scale, sin(angle) / scale)
        var out = [Float](repeating: 0, count: input.count)
        for j in 0..<h { for i in 0..<w {
            // Inverse map: output (i, j) reads input at the rotated, scaled position.
            let x = c * (Double(i) - cx) + s * (Double(j) - cy) + cx
            let y = -s * (Double(i) - cx) + c * (Double(j) - cy) + cy
            let xc = min(max(x, 0), Double(w - 1)), yc = min(max(y, 0), Double(h - 1))
            let i0 = min(Int(xc), w - 2 < 0 ? 0 : w - 2), j0 = min(Int(yc), h - 2 < 0 ? 0 : h - 2)
            let tx = Float(xc - Double(i0)), ty = Float(yc - Double(j0))
            let i1 = min(i0 + 1, w - 1), j1 = min(j0 + 1, h - 1)
            for k in 0..<d {
                let base = k * h * w
                let a = input[base + j0 * w + i0], b = input[base + j0 * w + i1]
                let e = input[base + j1 * w + i0], f = input[base + j1 * w + i1]
                out[base + j * w + i] = (a + (b - a) * tx) + ((e + (f - e) * tx) - (a + (b - a) * tx)) * ty
            }
        } }
        return out
    }
}

// Read back from checkpoints: settings added after one was written take their defaults (see TrainingConfig).
extension Augmentation {
    public init(from decoder: Decoder) throws {
        self.init()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        flipLeftRight = try c.value(.flipLeftRight, or: flipLeftRight)
        rotationDegrees = try c.value(.rotationDegrees, or: rotationDegrees)
        scale = try c.value(.scale, or: scale)
        intensityShift = try c.value(.intensityShift, or: intensityShift)
        intensityGain = try c.value(.intensityGain, or: intensityGain)
        noise = try c.value(.noise, or: noise)
    }
}
