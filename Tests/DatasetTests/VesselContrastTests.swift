import DICOM
import Dataset
import Foundation
import Preprocessing
import Synth
import TestSupport
import Testing

/// Whether a series' vessels are bright or dark (T2's flow voids) is read from its DICOM, by one rule that
/// training (through the cache's record) and prediction share.
@Suite struct VesselContrastTests {
    struct Manifest: Decodable {
        struct Entry: Decodable { var name, path: String; var modality: String?; var echo_time: Double? }
        var files: [Entry]
    }

    /// pydicom's MR files: those whose echo time pydicom reads as 60 ms or more are dark-vessel, the
    /// others bright. MR_small.dcm, a spin echo with TE 240 ms and no series description, is the case
    /// the description alone reads wrongly.
    @Test func theEchoTimeDecidesOnPydicomsMRFiles() throws {
        let path = try fixture("pydicom_pixels.json", generator: "pydicom_pixels.py")
        let manifest = try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
        let timed = manifest.files.filter { $0.modality == "MR" && $0.echo_time != nil }
        var seen: Set<DotFilter.VesselContrast> = []
        for entry in timed {
            let te = try #require(entry.echo_time)
            let contrast = DotFilter.VesselContrast(try SeriesLoader().load(entry.path))
            #expect(contrast == (te >= 60 ? .darkMR : .brightMR), "\(entry.name): TE \(te) ms read as \(contrast)")
            seen.insert(contrast)
        }
        #expect(seen == [.darkMR, .brightMR], "pydicom's MR files hold both long and short echo times")
        let small = try #require(timed.first { $0.name == "MR_small.dcm" })
        let series = try SeriesLoader().load(small.path)
        #expect(series.seriesDescription == nil && DotFilter.VesselContrast(modality: series.modality) == .brightMR)
        #expect(DotFilter.VesselContrast(series) == .darkMR)
    }

    /// Synthetic series carry their modality's echo time, so their DICOM reads as their table says; the
    /// cache records that reading, and a record from before it was kept is made good from the series.
    @Test func synthesisedSeriesReadAsTheirTableAndTheCacheKeepsIt() throws {
        let root = try temporaryDirectory()
        let cases = try SynthDataset.generate(SynthOptions(count: 8, size: .small, seed: 46), into: root)
        #expect(Set(cases.map(\.modality)) == Set(Modality.allCases), "seed 46 gives all four modalities")
        var preparation = Preparation(mode: .improved, shape: [16, 32, 32])
        preparation.spacing = 4.8
        let cache = PreprocessedCache(root: "\(root)/cache", preparation: preparation)
        let failed = try cache.build(cases.map { ($0.seriesInstanceUID, $0.modality.rawValue) }, seriesRoot: "\(root)/series")
        #expect(failed.isEmpty, "\(failed)")
        for c in cases {
            let series = try SeriesLoader().load("\(root)/series/\(c.seriesInstanceUID)")
            #expect((series.echoTimeMS == nil) == (c.modality == .cta), "\(c.modality): echo time \(series.echoTimeMS ?? -1)")
            let expected = DotFilter.VesselContrast(modality: c.modality.rawValue)
            #expect(DotFilter.VesselContrast(series) == expected, "\(c.modality)")
            let file = cache.recordPath(c.seriesInstanceUID)
            var record = try JSONDecoder().decode(PreparationRecord.self, from: Data(contentsOf: URL(fileURLWithPath: file)))
            #expect(record.vesselContrast == expected)
            // An older record: no contrast kept.
            record.vesselContrast = nil
            try JSONEncoder().encode(record).write(to: URL(fileURLWithPath: file))
            #expect(try cache.vesselContrast(c.seriesInstanceUID, seriesRoot: "\(root)/series") == expected)
            let rewritten = try JSONDecoder().decode(PreparationRecord.self, from: Data(contentsOf: URL(fileURLWithPath: file)))
            #expect(rewritten.vesselContrast == expected, "the record is made good")
        }
    }
}
