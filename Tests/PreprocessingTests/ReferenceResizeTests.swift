import Foundation
import Preprocessing
import TestSupport
import Testing

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
    }
}
