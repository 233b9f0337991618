import DICOM
import Foundation
import TestSupport
import Testing
import VolumeCore

/// Series written by tools/oracles/dicom_series.py with known geometry, and read by
/// SimpleITK's ImageSeriesReader as the oracle for voxels and physical corners.
@Suite struct SeriesLoaderTests {
    struct Case: Decodable {
        struct SITK: Decodable {
            struct Corner: Decodable { var index: [Int]; var point: [Double] }
            var shape: [Int]
            var corners: [Corner]
        }
        var series_uid: String?
        var shape: [Int]?
        var origin: [Double]?
        var slice_direction: [Double]?
        var tilt_degrees: Double?
        var sitk: SITK?
    }

    let cases: [String: Case]
    let root: String

    init() throws {
        let path = try fixture("dicom_series.json", generator: "dicom_series.py")
        cases = try JSONDecoder().decode([String: Case].self, from: Data(contentsOf: URL(fileURLWithPath: path)))
        root = "\(TestPaths.fixtures)/series"
    }

    func expectedVoxels(_ name: String) throws -> [Float] {
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(root)/\(name).f32"))
        return data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    @Test(arguments: ["axial", "axial_reversed", "sagittal", "coronal", "oblique", "rescale_per_slice", "mr"])
    func matchesSimpleITK(name: String) throws {
        let c = try #require(cases[name])
        let sitk = try #require(c.sitk)
        let series = try SeriesLoader().load("\(root)/\(name)")
        let s = series.volume.shape
        #expect([s.depth, s.height, s.width] == sitk.shape)
        #expect(series.volume.voxels == (try expectedVoxels(name)), "voxels of \(name) differ from the written values")
        #expect(series.seriesInstanceUID == c.series_uid)
        for corner in sitk.corners {
            let p = series.volume.geometry.patient(i: Double(corner.index[0]), j: Double(corner.index[1]), k: Double(corner.index[2]))
            let q = Vector3(corner.point[0], corner.point[1], corner.point[2])
            #expect((p - q).length < 1e-3, "\(name) corner \(corner.index): \(p) vs SimpleITK \(q)")
            // And back: the corner's patient point maps to its index.
            let v = series.volume.geometry.voxel(q)
            #expect(abs(v.x - Double(corner.index[0])) < 1e-6 && abs(v.y - Double(corner.index[1])) < 1e-6
                        && abs(v.z - Double(corner.index[2])) < 1e-6)
        }
        #expect(series.warnings.isEmpty, "\(series.warnings)")
        #expect(series.identifyingFields == nil)
        #expect(series.patientAge == "055Y" && series.patientSex == "F")
    }

    @Test func slicesAreOrderedByPositionNotByFileName() throws {
        let series = try SeriesLoader().load("\(root)/axial_reversed")
        let z = (0..<series.volume.shape.depth).map { series.volume.geometry.patient(i: 0, j: 0, k: Double($0)).z }
        #expect(z == z.sorted())
        #expect(series.transferSyntaxes.count == 2)
    }

    /// A series folder reached through a symbolic link (datasets assembled from links) loads as the folder.
    @Test func aLinkedSeriesFolderLoadsAsItsTarget() throws {
        let links = try temporaryDirectory()
        try FileManager.default.createSymbolicLink(atPath: "\(links)/linked", withDestinationPath: "\(root)/axial_reversed")
        let direct = try SeriesLoader().load("\(root)/axial_reversed"), linked = try SeriesLoader().load("\(links)/linked")
        #expect(linked.volume.voxels == direct.volume.voxels && linked.volume.geometry == direct.volume.geometry)
        #expect(try SeriesLoader.files(at: "\(links)/linked").count == SeriesLoader.files(at: "\(root)/axial_reversed").count)
    }

    @Test func gantryTiltIsDetectedAndKeptInTheAffine() throws {
        let c = try #require(cases["tilt"])
        let series = try SeriesLoader().load("\(root)/tilt")
        #expect(abs(series.tiltDegrees - (c.tilt_degrees ?? 0)) < 0.01)
        #expect(series.warnings.contains { $0.contains("gantry tilt") })
        #expect(series.volume.voxels == (try expectedVoxels("tilt")))
        let d = try #require(c.slice_direction)
        let dir = series.volume.geometry.sliceDirection
        #expect((dir - Vector3(d[0], d[1], d[2])).length < 1e-6)
    }

    @Test func missingAndDuplicateSlicesAreReported() throws {
        let missing = try SeriesLoader().load("\(root)/missing_slice")
        #expect(missing.volume.shape.depth == 7)
        #expect(missing.warnings.contains { $0.contains("non-uniform slice spacing") && $0.contains("1 look like missing slices") },
                "\(missing.warnings)")
        let duplicate = try SeriesLoader().load("\(root)/duplicate_slice")
        #expect(duplicate.volume.shape.depth == 5)
        #expect(abs(duplicate.volume.geometry.spacing.z - 2) < 1e-9)
        #expect(duplicate.warnings.contains { $0.contains("dropped 1 duplicate slice position") }, "\(duplicate.warnings)")
    }

    @Test func localizerSlicesAreSplitOffWithAWarning() throws {
        let series = try SeriesLoader().load("\(root)/with_localizer")
        #expect(series.volume.shape.depth == 6 && series.volume.shape.height == 16)
        #expect(series.warnings.contains { $0.contains("split off 1 slice") })
        #expect(series.volume.voxels == (try expectedVoxels("with_localizer")))
    }

    @Test func twoSeriesInOneFolderAreNamed() throws {
        do {
            _ = try SeriesLoader().load("\(root)/two_series")
            Issue.record("a folder of two series loaded as one")
        } catch let e as DICOMError {
            #expect(e.description.contains("2 series mixed"))
        }
        let (found, unreadable) = try SeriesLoader().inspect("\(root)/two_series")
        #expect(found.map(\.header.frameCount).sorted() == [3, 4])
        #expect(found.map(\.sliceCount).sorted() == [3, 4])
        #expect(unreadable.isEmpty)
        let chosen = try SeriesLoader().load("\(root)/two_series", seriesInstanceUID: found[0].header.seriesInstanceUID)
        #expect(chosen.volume.shape.depth == found[0].header.frameCount)
    }

    @Test func allSlicesAtOnePositionIsAnError() throws {
        #expect { try SeriesLoader().load("\(root)/one_position") } throws: { error in
            (error as? DICOMError)?.description.contains("one position") == true
        }
    }

    @Test func phiOnlyWhenAsked() throws {
        let series = try SeriesLoader(options: .init(includePHI: true)).load("\(root)/axial")
        #expect(series.identifyingFields?["PatientName"] == "Doe^Jane")
        #expect(series.identifyingFields?["PatientID"] == "PID-0001")
    }

    @Test func hugeVolumesAreRefusedBeforeAllocating() throws {
        #expect { try SeriesLoader(options: .init(maxVolumeBytes: 1000)).load("\(root)/axial") } throws: { error in
            if case .tooLarge? = (error as? DICOMError)?.kind { return true }
            return false
        }
    }

    @Test(arguments: ["sagittal", "coronal", "oblique", "axial_reversed"])
    func canonicalReorientationKeepsEveryVoxelInPlace(name: String) throws {
        let series = try SeriesLoader().load("\(root)/\(name)")
        let v = series.volume
        let c = try v.canonical()
        #expect(c.count == v.count)
        // Canonical axes point along +L, +P, +S.
        #expect(c.geometry.columnDirection.x > 0.7 && c.geometry.rowDirection.y > 0.7 && c.geometry.sliceDirection.z > 0.7)
        // Every voxel of the canonical volume holds the value found at the same patient position in the original.
        for k in stride(from: 0, to: c.shape.depth, by: 2) {
            for j in stride(from: 0, to: c.shape.height, by: 3) {
                for i in stride(from: 0, to: c.shape.width, by: 3) {
                    let p = c.geometry.patient(i: Double(i), j: Double(j), k: Double(k))
                    let o = v.geometry.voxel(p)
                    let (oi, oj, ok) = (Int(o.x.rounded()), Int(o.y.rounded()), Int(o.z.rounded()))
                    #expect(abs(o.x - Double(oi)) < 1e-6 && abs(o.y - Double(oj)) < 1e-6 && abs(o.z - Double(ok)) < 1e-6)
                    #expect(c[k, j, i] == v[ok, oj, oi])
                }
            }
        }
    }

    @Test(arguments: ["axial_reversed", "sagittal", "coronal", "oblique"])
    func localizerPointsMapToTheCanonicalVolume(name: String) throws {
        let series = try SeriesLoader().load("\(root)/\(name)")
        let canonical = try series.volume.canonical()
        let (sop, _) = series.slices[3]
        let voxel = try #require(series.voxel(sopInstanceUID: sop, x: 5, y: 7, in: canonical.geometry))
        let (i, j, k) = (Int(voxel.x.rounded()), Int(voxel.y.rounded()), Int(voxel.z.rounded()))
        #expect(canonical[k, j, i] == series.volume[3, 7, 5])
        #expect(series.patientPoint(sopInstanceUID: "no-such-uid", x: 0, y: 0) == nil)
    }
}
