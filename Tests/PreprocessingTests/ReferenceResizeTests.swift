import Foundation
import Preprocessing
import TestSupport
import Testing
import VolumeCore

/// The reference preprocessing against the notebook's code run by scikit-image (tools/oracles/reference_resize.py).
@Suite struct ReferenceResizeTests {
    struct Case: Decodable { var shape: [Int]; var target: [Int] }

    func floats(_ path: String) throws -> [Float] {
        try Data(contentsOf: URL(fileURLWithPath: path)).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    @Test(arguments: ["downsample", "mixed", "notebook_shape"])
    func matchesScikitImage(name: String) throws {
        let meta = try JSONDecoder().decode([String: Case].self,
                                            from: Data(contentsOf: URL(fileURLWithPath: fixture("resize.json", generator: "reference_resize.py"))))
        let c = try #require(meta[name])
        let input = try floats("\(TestPaths.fixtures)/resize/\(name).in.f32")
        let expected = try floats("\(TestPaths.fixtures)/resize/\(name).out.f32")
        let out = ReferencePreprocessing.resize(ReferencePreprocessing.normalize(input), from: (c.shape[0], c.shape[1], c.shape[2]),
                                                to: (c.target[0], c.target[1], c.target[2]))
        #expect(out.count == expected.count)
        let error = maxAbsoluteError(out, expected)
        #expect(error <= 1e-3, "\(name): max abs error \(error)")
        // The fused path (clip and scale while reading the HU volume) gives the same.
        let volume = try Volume(shape: (c.shape[0], c.shape[1], c.shape[2]), voxels: input,
                                geometry: Geometry(origin: .zero, spacing: Vector3(1, 1, 1), columnDirection: Vector3(1, 0, 0),
                                                   rowDirection: Vector3(0, 1, 0), sliceDirection: Vector3(0, 0, 1)))
        let fused = ReferencePreprocessing.apply(volume, to: (c.target[0], c.target[1], c.target[2]))
        #expect(maxAbsoluteError(fused, expected) <= 1e-3, "\(name): fused max abs error \(maxAbsoluteError(fused, expected))")
    }
}
