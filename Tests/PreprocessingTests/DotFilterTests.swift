import Foundation
import Preprocessing
import TestSupport
import Testing

/// The dot filter against scipy and numpy (tools/oracles/dot_filter.py, which runs the definition in
/// tools/analysis/hessian_blobs.py) on a tube with a ball on its wall.
@Suite struct DotFilterTests {
    struct Case: Decodable {
        var shape: [Int]
        var spacing: [Double]
        var scales: [Double]
        var reach: [Int]
        var derivatives: [String: [Double]]
        var maxima: [Int]
        var maximaValues: [Float]
        var ballVoxel: [Int]
    }

    func load() throws -> (Case, String) {
        let meta = try fixture("dot_filter.json", generator: "dot_filter.py")
        return (try JSONDecoder().decode(Case.self, from: Data(contentsOf: URL(fileURLWithPath: meta))), "\(TestPaths.fixtures)/dot_filter")
    }

    func floats(_ path: String) throws -> [Float] {
        try Data(contentsOf: URL(fileURLWithPath: path)).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    @Test func derivativesMatchScipy() throws {
        let (c, folder) = try load()
        let image = try floats("\(folder)/image.f32")
        for (name, d) in c.derivatives {
            let expected = try floats("\(folder)/\(name).f32")
            let ours = DotFilter.derivative(image, shape: c.shape, axis: Int(d[0]), sigma: d[1], order: Int(d[2]))
            let scale = expected.map(abs).max() ?? 1
            #expect(maxAbsoluteError(ours, expected) <= 1e-5 * max(scale, 1), "\(name): max abs error \(maxAbsoluteError(ours, expected)) of \(scale)")
        }
    }

    @Test func measureAndMaximaMatchTheAnalysis() throws {
        let (c, folder) = try load()
        let image = try floats("\(folder)/image.f32")
        let mask = try Data(contentsOf: URL(fileURLWithPath: "\(folder)/mask.u8")).map { $0 != 0 }
        let expected = try floats("\(folder)/measure.f32")
        let filter = DotFilter(scalesMM: c.scales)
        let ours = filter.measure(image, shape: c.shape, spacing: c.spacing, mask: mask)
        let top = expected.max() ?? 0
        #expect(top > 0)
        #expect(maxAbsoluteError(ours, expected) <= 1e-4 * top, "max abs error \(maxAbsoluteError(ours, expected)) of \(top)")
        // Off the mask nothing is measured.
        #expect(zip(ours, mask).allSatisfy { $1 || $0 == 0 })
        let found = DotFilter.maxima(ours, shape: c.shape, reach: c.reach)
        #expect(found.map(\.index) == c.maxima)
        #expect(maxAbsoluteError(found.map(\.value), c.maximaValues) <= 1e-4 * top)
        // The ball on the tube's wall is one of them, and the strongest inside the volume (the other, at
        // the tube's cut end on the volume's face, is where the mirrored edge closes the tube).
        let (h, w) = (c.shape[1], c.shape[2])
        let near = found.firstIndex { p in
            let v = [p.index / (h * w), p.index / w % h, p.index % w]
            return zip(v, c.ballVoxel).allSatisfy { abs($0 - $1) <= 1 }
        }
        #expect(near != nil && near! <= 1, "the ball's maximum ranks \(String(describing: near))")
    }

    @Test func eigenvaluesOfKnownMatrices() {
        // diag(−3, −1, 2), rotated: the extremes are −3 and 2 whatever the rotation.
        let (c, s) = (cos(0.7), sin(0.7))
        // R diag(−3, −1, 2) Rᵀ for the rotation by 0.7 rad about the first axis.
        let b = -1 * c * c + 2 * s * s, cc = -1 * s * s + 2 * c * c, f = (-1 - 2) * c * s
        let (low, high) = DotFilter.extremeEigenvalues(-3, b, cc, 0, 0, f)
        #expect(abs(low + 3) < 1e-9 && abs(high - 2) < 1e-9, "\(low) \(high)")
        let (l2, h2) = DotFilter.extremeEigenvalues(-2, -2, -2, 0, 0, 0)
        #expect(l2 == -2 && h2 == -2)
        // [[2, 1, 0], [1, 2, 0], [0, 0, -4]]: eigenvalues 1, 3, −4.
        let (l3, h3) = DotFilter.extremeEigenvalues(2, 2, -4, 1, 0, 0)
        #expect(abs(l3 + 4) < 1e-9 && abs(h3 - 3) < 1e-9, "\(l3) \(h3)")
    }
}
