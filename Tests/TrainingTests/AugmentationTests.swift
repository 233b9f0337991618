import Dataset
import Foundation
import Testing
@testable import Training

@Suite struct AugmentationTests {
    func sample(_ shape: [Int]) -> Sample {
        Sample(id: "a", input: (0..<shape.reduce(1, *)).map(Float.init), labels: Array(repeating: false, count: 14))
    }

    @Test func quarterTurnMovesPixelsAsARotation() {
        let shape = [2, 4, 4]
        let input = sample(shape).input
        let rotated = Augmentation.rotateAndScale(input, shape: shape, angle: .pi / 2, scale: 1)
        // Output (i, j) reads input (x, y) = (j − c + c, −(i − c) + c) with c = 1.5: a quarter turn.
        for k in 0..<2 { for j in 0..<4 { for i in 0..<4 {
            let (x, y) = (j, 3 - i)
            #expect(abs(rotated[k * 16 + j * 4 + i] - input[k * 16 + y * 4 + x]) < 1e-4, "(\(i),\(j),\(k))")
        } } }
        #expect(Augmentation.rotateAndScale(input, shape: shape, angle: 0, scale: 1) == input)
        // Identity augmentation changes nothing and draws nothing.
        var rng = SplitMix64(seed: 3)
        let before = rng
        #expect(Augmentation().apply(sample(shape), shape: shape, using: &rng).input == input)
        #expect(rng.next() == { var r = before; return r.next() }())
    }

    @Test func sameSeedSameAugmentation() {
        var a = Augmentation()
        a.flipLeftRight = true
        a.rotationDegrees = 10
        a.scale = 0.1
        a.intensityShift = 0.05
        a.intensityGain = 0.1
        a.noise = 0.02
        let shape = [4, 16, 16]
        let s = sample(shape)
        var r1 = SplitMix64(seed: 8), r2 = SplitMix64(seed: 8), r3 = SplitMix64(seed: 9)
        let x = a.apply(s, shape: shape, using: &r1), y = a.apply(s, shape: shape, using: &r2), z = a.apply(s, shape: shape, using: &r3)
        #expect(x.input == y.input && x.labels == y.labels)
        #expect(x.input != z.input)
    }

    @Test func noiseHasTheRequestedSpread() {
        var a = Augmentation()
        a.noise = 0.5
        let shape = [8, 32, 32]
        let flat = Sample(id: "f", input: Array(repeating: 0, count: 8 * 32 * 32), labels: Array(repeating: false, count: 14))
        var rng = SplitMix64(seed: 1)
        let out = a.apply(flat, shape: shape, using: &rng).input
        let mean = out.reduce(0, +) / Float(out.count)
        let std = (out.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Float(out.count)).squareRoot()
        #expect(abs(mean) < 0.02 && abs(std - 0.5) < 0.02, "mean \(mean) std \(std)")
    }
}
