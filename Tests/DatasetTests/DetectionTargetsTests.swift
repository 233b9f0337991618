import Anatomy
import Dataset
import Foundation
import Preprocessing
import Synth
import TestSupport
import Testing
import VolumeCore

@Suite struct DetectionTargetsTests {
    /// Through the improved-mode cache: every localizer lands on its aneurysm in the prepared grid, on
    /// voxels the resampled vessel labels give to the same location, and the heatmap peaks there.
    @Test func localizersAndVesselLabelsLandOnTheAneurysmInThePreparedGrid() throws {
        let root = try temporaryDirectory()
        var options = SynthOptions(count: 6, size: .small, seed: 71)
        options.positiveFraction = 1
        options.segmentationFraction = 1
        let cases = try SynthDataset.generate(options, into: root)
        var preparation = Preparation(mode: .improved, shape: [48, 64, 64])
        preparation.spacing = 2.4
        let cache = PreprocessedCache(root: "\(root)/cache", preparation: preparation)
        var localizers: [String: [LocalizerPoint]] = [:]
        for p in try RSNATables.readLocalizers("\(root)/train_localizers.csv") { localizers[p.seriesInstanceUID, default: []].append(p) }
        let labels = try RSNATables.readLabels("\(root)/train.csv")
        let failed = try cache.build(labels.map { ($0.seriesInstanceUID, $0.modality.rawValue) }, seriesRoot: "\(root)/series",
                                     localizers: localizers, segmentationRoot: "\(root)/segmentations")
        #expect(failed.isEmpty, "\(failed)")
        var checked = 0
        for c in cases {
            let (targets, vessels) = try cache.targets(c.seriesInstanceUID)
            let record = try JSONDecoder().decode(PreparationRecord.self, from: Data(contentsOf: URL(fileURLWithPath: cache.recordPath(c.seriesInstanceUID))))
            #expect(targets.points.count == c.aneurysms.count, "\(targets.unplaced)")
            let grid = try #require(vessels)
            let heat = targets.heatmap(shape: preparation.shape, spacing: preparation.spacing)
            for a in c.aneurysms {
                let truth = record.output.voxel(a.center)
                let p = try #require(targets.points.first { $0.location == a.location })
                // The localizer names a slice, not a depth: within half a source slice of the centre.
                let offset = Vector3((p.i - truth.x) * 2.4, (p.j - truth.y) * 2.4, (p.k - truth.z) * 2.4).length
                #expect(offset <= record.source.spacing.z / 2 + 0.5, "\(a.location): \(offset) mm")
                let index = (Int(p.k.rounded()) * 64 + Int(p.j.rounded())) * 64 + Int(p.i.rounded())
                // The heatmap there is the Gaussian of σ = 2 mm at the point's distance from that voxel centre.
                let r2 = pow(p.i.rounded() - p.i, 2) + pow(p.j.rounded() - p.j, 2) + pow(p.k.rounded() - p.k, 2)
                let sigma = 2.0 / 2.4
                let expected = exp(-r2 / (2 * sigma * sigma))
                #expect(targets.points.count > 1 || abs(Double(heat[index]) - expected) < 1e-5, "\(heat[index]) vs \(expected)")
                #expect(Double(heat[index]) >= expected - 1e-5 && heat[index] > 0.5)
                if a.radius * 2 >= 5 {
                    #expect(grid[index] == UInt8(a.location.rawValue + 1), "\(a.location): label \(grid[index])")
                    checked += 1
                }
            }
            // Mirroring swaps the side and the label.
            let mirrored = targets.flippedLeftRight(width: 64)
            for (p, q) in zip(targets.points, mirrored.points) {
                #expect(q.location == p.location.mirrored && abs(q.i - (63 - p.i)) < 1e-9 && q.j == p.j)
            }
        }
        #expect(checked > 0, "no aneurysm large enough to check the vessel labels")
    }
}
