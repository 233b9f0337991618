import DICOM
import NIfTI
import Foundation
import TestSupport
import Testing

/// Bad input gives a typed DICOMError naming file, tag and offset — never a crash.
@Suite struct BadInputTests {
    let testFiles: [String: String]

    init() throws {
        // pydicom's and pydicom-data's test files, located through the pixel oracle's manifest.
        let manifest = try fixture("pydicom_pixels.json", generator: "pydicom_pixels.py")
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: manifest))) as? [String: Any]
        testFiles = json?["all_test_files"] as? [String: String] ?? [:]
    }

    func path(_ name: String) throws -> String { try #require(testFiles[name], "pydicom test file \(name)") }
    func bytes(_ name: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path(name))) }

    /// Parses and decodes; returns the error, which must be a DICOMError.
    func outcome(_ data: Data) -> DICOMError? {
        do {
            let file = try DICOMFile.parse(data, path: "input", options: ReadOptions(maxPixelBytes: 256 << 20))
            _ = try PixelDecoder.decode(file)
            return nil
        } catch let e as DICOMError {
            return e
        } catch {
            Issue.record("untyped error \(error)")
            return nil
        }
    }

    static let samples = ["CT_small.dcm", "MR_small_RLE.dcm", "emri_small_jpeg_ls_lossless.dcm", "MR_small_jp2klossless.dcm",
                          "SC_rgb_jpeg_gdcm.dcm", "MR_small_bigendian.dcm", "image_dfl.dcm", "MR_small_implicit.dcm", "emri_small.dcm"]

    @Test(arguments: samples)
    func truncationAtManyOffsets(name: String) throws {
        let data = try bytes(name)
        var errors = 0, offsets = 0
        for cut in stride(from: 0, to: data.count - 1, by: max(1, data.count / 97)) {
            offsets += 1
            if let e = outcome(data.prefix(cut)) {
                errors += 1
                #expect(e.file == "input")
            }
        }
        // Cutting anywhere inside the pixel data must be noticed; only a cut in trailing padding may pass.
        #expect(errors >= offsets - 2, "\(name): \(offsets - errors) of \(offsets) truncated copies decoded without error")
    }

    @Test(arguments: samples)
    func randomByteFlipsNeverCrash(name: String) throws {
        let data = try bytes(name)
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<150 {
            var d = data
            for _ in 0..<Int.random(in: 1...8, using: &rng) {
                let i = Int.random(in: 0..<d.count, using: &rng)
                d[i] = UInt8.random(in: 0...255, using: &rng)
            }
            _ = outcome(d)
        }
    }

    @Test func elementLengthBeyondTheEndNamesTagAndOffset() throws {
        var data = try bytes("CT_small.dcm")
        // Find Patient's Name (0010,0010) with VR PN in the explicit-VR data set and give it a huge length.
        let pattern: [UInt8] = [0x10, 0x00, 0x10, 0x00, 0x50, 0x4E]
        let start = try #require((0..<(data.count - 6)).first { i in (0..<6).allSatisfy { data[i + $0] == pattern[$0] } })
        data[start + 6] = 0xFF
        data[start + 7] = 0x7F
        let e = try #require(outcome(data.prefix(start + 200)))
        #expect(e.kind == .truncated)
        #expect(e.tag == Tag(0x0010, 0x0010))
        #expect(e.offset == start)
    }

    @Test func hugeDimensionsAreRefusedBeforeAllocating() throws {
        var data = try bytes("CT_small.dcm")
        // Rows (0028,0010) and Columns (0028,0011) to 65535 each.
        for element: UInt8 in [0x10, 0x11] {
            let pattern: [UInt8] = [0x28, 0x00, element, 0x00, 0x55, 0x53, 0x02, 0x00]
            let at = try #require((0..<(data.count - 10)).first { i in (0..<8).allSatisfy { data[i + $0] == pattern[$0] } })
            data[at + 8] = 0xFF
            data[at + 9] = 0xFF
        }
        let file = try DICOMFile.parse(data, path: "huge")
        #expect { try PixelDecoder.decode(file, options: ReadOptions(maxPixelBytes: 1 << 30)) } throws: { error in
            guard let e = error as? DICOMError, case let .tooLarge(bytes, limit) = e.kind else { return false }
            return bytes == 65535 * 65535 * 2 && limit == 1 << 30
        }
    }

    @Test func nonImageObjectsAreNotImages() throws {
        for name in ["rtplan.dcm", "test-SR.dcm", "liver.dcm"] {
            let dir = try temporaryDirectory()
            try FileManager.default.copyItem(atPath: path(name), toPath: "\(dir)/\(name)")
            #expect(throws: DICOMError.self, "\(name)") { try SeriesLoader().load(dir) }
            do {
                _ = try SeriesLoader().load(dir)
            } catch let e as DICOMError {
                guard case .notAnImage = e.kind else { Issue.record("\(name): \(e)"); continue }
            }
        }
    }

    @Test func emptyAndNonDICOMFoldersAreTypedErrors() throws {
        let empty = try temporaryDirectory()
        #expect(throws: DICOMError.self) { try SeriesLoader().load(empty) }
        let junk = try temporaryDirectory()
        try Data("not dicom at all".utf8).write(to: URL(fileURLWithPath: "\(junk)/a.dcm"))
        try Data(count: 300).write(to: URL(fileURLWithPath: "\(junk)/b.dcm"))
        #expect(throws: DICOMError.self) { try SeriesLoader().load(junk) }
        #expect(throws: DICOMError.self) { try SeriesLoader().load("/nonexistent/folder") }
    }

    @Test func unsupportedTransferSyntaxIsNamed() throws {
        // Relabel a JPEG Baseline file as the retired JPEG Extended (Processes 3 & 5), which Willis does not decode.
        var data = try bytes("SC_rgb_jpeg_dcmtk.dcm")
        let old = Array("1.2.840.10008.1.2.4.50".utf8), new = Array("1.2.840.10008.1.2.4.52".utf8)
        let at = try #require((0..<(data.count - old.count)).first { i in (0..<old.count).allSatisfy { data[i + $0] == old[$0] } })
        data.replaceSubrange(at..<(at + old.count), with: new)
        let file = try DICOMFile.parse(data, path: "relabelled")
        #expect { try PixelDecoder.decode(file) } throws: { error in
            guard let e = error as? DICOMError, case let .unsupported(m) = e.kind else { return false }
            return m.contains("1.2.840.10008.1.2.4.52")
        }
    }

    @Test func nanRescaleAndMixedSizesAreRefused() throws {
        _ = try fixture("dicom_series.json", generator: "dicom_series.py")
        let root = "\(TestPaths.fixtures)/series"
        #expect { try SeriesLoader().load("\(root)/nan_slope") } throws: { error in
            (error as? DICOMError)?.description.contains("not finite") == true
        }
        #expect { try SeriesLoader().load("\(root)/mixed_sizes") } throws: { error in
            (error as? DICOMError)?.description.contains("no majority") == true
        }
    }

    @Test func headerOnlyReadsStopBeforePixelData() throws {
        let file = try path("CT_small.dcm")
        let full = try DICOMFile.read(file)
        let header = try DICOMFile.read(file, options: ReadOptions(headerOnly: true))
        // The header pass records where the pixels are; they are decoded from the same mapping later.
        #expect(header.dataSet[.pixelData]?.range == full.dataSet[.pixelData]?.range)
        #expect((full.dataSet[.pixelData]?.range.count ?? 0) == 128 * 128 * 2)
        // Pixel data cut short is noticed by the header pass, before anything is decoded.
        let data = try bytes("CT_small.dcm")
        let end = try #require(full.dataSet[.pixelData]?.range.upperBound)
        let cut = Result { try DICOMFile.parse(data.prefix(end - 100), options: ReadOptions(headerOnly: true)) }
        guard case let .failure(error) = cut else { Issue.record("header pass accepted pixel data cut short"); return }
        #expect((error as? DICOMError)?.kind == .truncated)
        #expect(header.dataSet.string(.sopInstanceUID) == full.dataSet.string(.sopInstanceUID))
    }
}

/// Inputs libFuzzer found crashing earlier versions (scripts/fuzz); each must now end in a value or a typed error.
@Suite struct FuzzRegressionTests {
    @Test func earlierFuzzFindingsNoLongerCrash() throws {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("FuzzFindings")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".bin") }
        #expect(files.count == 3)
        for name in files {
            let data = try Data(contentsOf: folder.appendingPathComponent(name))
            do {
                let file = try DICOMFile.parse(data, path: name, options: ReadOptions(maxPixelBytes: 64 << 20))
                _ = try PixelDecoder.decode(file, options: ReadOptions(maxPixelBytes: 64 << 20))
            } catch is DICOMError {
            }
            do { _ = try NIfTI.parse(data, path: name) } catch is NIfTI.Error {}
        }
    }
}
