import CSystemZlib
import DICOM
import Foundation
import TestSupport
import Testing
import VolumeCore

/// Every CT, MR and OT image of pydicom's test set that pydicom 3 can decode,
/// decoded by Willis and compared with pydicom's array (tools/oracles/pydicom_pixels.py).
@Suite struct PydicomOracleTests {
    struct Manifest: Decodable {
        struct Entry: Decodable {
            var name, path, transfer_syntax, dtype: String
            var shape: [Int]
            var crc32: UInt32
            var min, max, mean, slope, intercept: Double
            struct Frame: Decodable { var position: [Double]?; var slope, intercept: Double }
            var frames: [Frame]
            var modality: String?
            var echo_time: Double?
        }
        struct Undecodable: Decodable { var name, path, reason: String }
        var pydicom: String
        var files: [Entry]
        var undecodable: [Undecodable]
    }

    /// Files of the oracle that Willis does not decode, and why; each must fail with a typed error.
    /// None at present: every file pydicom decodes, Willis decodes.
    static let skipped: [String: String] = [:]

    let manifest: Manifest
    let directory: String

    init() throws {
        let path = try fixture("pydicom_pixels.json", generator: "pydicom_pixels.py")
        manifest = try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
        directory = TestPaths.fixtures
    }

    func crc(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, uInt($0.count))) }
    }

    func compare(_ entry: Manifest.Entry) -> String? {
        let pixels: PixelArray
        do {
            pixels = try PixelDecoder.decode(DICOMFile.read(entry.path))
        } catch {
            return "\(entry.name): \(error)"
        }
        if pixels.shape != entry.shape { return "\(entry.name): shape \(pixels.shape) vs \(entry.shape)" }
        if pixels.type.rawValue != entry.dtype { return "\(entry.name): dtype \(pixels.type) vs \(entry.dtype)" }
        let lossy = TransferSyntax(uid: entry.transfer_syntax).isLossy
        if !lossy {
            if crc(pixels.bytes) != entry.crc32 { return "\(entry.name): pixel CRC differs (lossless must match exactly)" }
        } else {
            guard let expected = try? Data(contentsOf: URL(fileURLWithPath: "\(directory)/pixels/\(entry.name).raw")) else {
                return "\(entry.name): oracle pixels missing"
            }
            let ours = pixels.allSamples(), theirs = PixelArray(frames: pixels.frames, rows: pixels.rows,
                columns: pixels.columns, samplesPerPixel: pixels.samplesPerPixel, type: pixels.type, bytes: [UInt8](expected)).allSamples()
            let worst = zip(ours, theirs).map { abs($0 - $1) }.max() ?? 0
            if worst > 1 { return "\(entry.name): lossy decode differs by \(worst) grey levels (limit 1)" }
        }
        return nil
    }

    @Test func everyDecodableFileMatchesPydicom() throws {
        #expect(manifest.files.count >= 90, "pydicom-data should provide about 100 CT/MR/OT images")
        var failures: [String] = []
        var checked = 0
        for entry in manifest.files {
            if let reason = Self.skipped[entry.name] {
                // Not decoded on purpose: it must fail cleanly, not crash or return garbage.
                do {
                    _ = try PixelDecoder.decode(DICOMFile.read(entry.path))
                    failures.append("\(entry.name): listed as skipped (\(reason)) but decoded")
                } catch is DICOMError {
                } catch {
                    failures.append("\(entry.name): untyped error \(error)")
                }
                continue
            }
            checked += 1
            if let failure = compare(entry) { failures.append(failure) }
        }
        #expect(failures.isEmpty, "\(failures.count) of \(checked) files differ:\n\(failures.joined(separator: "\n"))")
    }

    /// Enhanced multi-frame CT/MR: positions and rescale per frame from the functional groups.
    @Test func enhancedMultiFrameUsesTheFunctionalGroups() throws {
        let enhanced = manifest.files.filter { !$0.frames.isEmpty && $0.frames.allSatisfy { $0.position != nil } }
        #expect(!enhanced.isEmpty, "pydicom's test set should hold an enhanced multi-frame CT (eCT_Supplemental.dcm)")
        for entry in enhanced {
            let series = try SeriesLoader().load(entry.path)
            let pixels = try PixelDecoder.decode(DICOMFile.read(entry.path))
            #expect(series.volume.shape.depth == entry.frames.count)
            for (k, slice) in series.slices.enumerated() {
                let frame = entry.frames[slice.frame]
                let p = try #require(frame.position)
                let q = series.volume.geometry.patient(i: 0, j: 0, k: Double(k))
                #expect((q - Vector3(p[0], p[1], p[2])).length < 1e-3, "\(entry.name) slice \(k)")
                let expected = pixels.floats(frame: slice.frame, slope: Float(frame.slope), intercept: Float(frame.intercept))
                let plane = series.volume.rows * series.volume.columns
                #expect(Array(series.volume.voxels[(k * plane)..<((k + 1) * plane)]) == expected, "\(entry.name) slice \(k) values")
            }
        }
    }

    /// Every MR file's echo time as pydicom reads it (EchoTime, or an enhanced object's EffectiveEchoTime),
    /// whatever the syntax or byte order, read with the pixels and from the headers alone: the
    /// acquisition fact that says whether an MR is T2-weighted.
    @Test func echoTimeMatchesPydicom() throws {
        let mr = manifest.files.filter { $0.modality == "MR" }
        #expect(mr.filter { $0.echo_time != nil }.count >= 10, "pydicom's test set holds MR files with an echo time (MR_small.dcm: 240 ms)")
        #expect(mr.contains { $0.echo_time == nil }, "and some without (emri_small.dcm)")
        for entry in mr {
            let series = try SeriesLoader().load(entry.path)
            #expect(series.echoTimeMS == entry.echo_time, "\(entry.name): \(series.echoTimeMS.map { "\($0)" } ?? "none") ms, pydicom \(entry.echo_time.map { "\($0)" } ?? "none")")
            // `willis inspect` reads headers only: the same echo time and description.
            let header = try #require(try SeriesLoader().inspect(entry.path).series.first).header
            #expect(header.echoTimeMS == entry.echo_time && header.seriesDescription == series.seriesDescription, "\(entry.name): inspected")
        }
    }

    /// pydicom cannot decode these; Willis must not crash on them either. MR_truncated.dcm
    /// must be reported as truncated; OT-PAL-8-face.dcm (no file meta) Willis reads as Implicit VR.
    @Test func filesPydicomCannotDecode() throws {
        #expect(Set(manifest.undecodable.map(\.name)) == ["MR_truncated.dcm", "OT-PAL-8-face.dcm"])
        for entry in manifest.undecodable {
            switch entry.name {
            case "MR_truncated.dcm":
                #expect { try PixelDecoder.decode(DICOMFile.read(entry.path)) } throws: { error in
                    (error as? DICOMError)?.kind == .truncated
                }
            default:
                let pixels = try PixelDecoder.decode(DICOMFile.read(entry.path))
                #expect(pixels.shape == [480, 640])
            }
        }
    }
}
