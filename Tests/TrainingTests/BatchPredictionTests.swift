import Foundation
import Inference
import Models
import Preprocessing
import Synth
import TestSupport
import Testing
import Torch

@Suite(.serialized) struct BatchPredictionTests {
    init() throws { _ = try engine() }

    /// The pipeline gives, in order, exactly what one-at-a-time prediction gives, for any number of
    /// workers and queue depth; a broken series in the middle fails alone.
    @Test func overlappedPredictionEqualsSequentialPrediction() throws {
        let root = try temporaryDirectory()
        let cases = try SynthDataset.generate(SynthOptions(count: 5, size: .small, seed: 61), into: root)
        try Torch.manualSeed(3)
        let model = try UNet3D(baseFilters: 4)
        try model.store.save(to: "\(root)/w.safetensors", metadata: [Preparation.metadataKey: Preparation(shape: [16, 32, 32]).json])
        let predictor = try Predictor(weights: "\(root)/w.safetensors")
        var folders = cases.map { "\(root)/series/\($0.seriesInstanceUID)" }
        try FileManager.default.createDirectory(atPath: "\(root)/broken", withIntermediateDirectories: true)
        try Data("not DICOM".utf8).write(to: URL(fileURLWithPath: "\(root)/broken/a.dcm"))
        folders.insert("\(root)/broken", at: 2)
        let expected = folders.map { f in try? predictor.predict(series: f) }
        #expect(expected.compactMap { $0 }.count == 5)
        for (workers, depth) in [(1, 1), (2, 1), (3, 2)] {
            var seen: [Int] = []
            BatchPrediction(workers: workers, queueDepth: depth).run(folders, predictor: predictor) { i, outcome in
                seen.append(i)
                #expect(outcome.folder == folders[i])
                if let e = expected[i] {
                    #expect(outcome.uid == e.uid && outcome.error == nil)
                    #expect(outcome.probabilities == e.probabilities, "\(workers) workers: series \(i)")
                } else {
                    #expect(outcome.probabilities == nil && outcome.error?.isEmpty == false)
                }
            }
            #expect(seen == Array(folders.indices))
        }
    }
}
