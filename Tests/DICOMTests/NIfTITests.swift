import CSystemZlib
import DICOM
import Foundation
import NIfTI
import TestSupport
import Testing
import VolumeCore

struct NibabelEntry: Decodable {
    var name, path: String
    var version, datatype, sform_code, qform_code: Int
    var shape: [Int]
    var affine: [[Double]]
    var crc32: UInt32
}

func crc(_ values: [Float]) -> UInt32 {
    values.withUnsafeBytes { raw in UInt32(crc32(0, raw.bindMemory(to: Bytef.self).baseAddress, uInt(raw.count))) }
}

/// NIfTI reading and writing against nibabel (tools/oracles/nifti_probe.py).
@Suite struct NIfTITests {
    struct Manifest: Decodable {
        struct Skipped: Decodable { var name, reason: String }
        var files: [NibabelEntry]
        var skipped: [Skipped]
    }

    @Test func readsNibabelsTestImagesAsNibabelDoes() throws {
        let path = "\(TestPaths.fixtures)/nibabel_images.json"
        if !FileManager.default.fileExists(atPath: path) { try runOracle("nifti_probe.py", ["--nibabel-tests", TestPaths.fixtures]) }
        let manifest = try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(manifest.files.count >= 6)
        // CIFTI-2 files are NIfTI-2 containers of a different kind of data; nibabel does not read them as images either.
        #expect(manifest.skipped.allSatisfy { $0.reason.contains("Cifti") })
        for entry in manifest.files {
            let image = try NIfTI.read(entry.path)
            #expect(image.version == entry.version, "\(entry.name)")
            #expect(Int(image.dataType.rawValue) == entry.datatype, "\(entry.name)")
            let s = image.volume.shape
            #expect([s.width, s.height, s.depth] == Array((entry.shape + [1, 1]).prefix(3)), "\(entry.name)")
            #expect(image.volumeCount == entry.shape.dropFirst(3).reduce(1, *), "\(entry.name)")
            for r in 0..<4 { for c in 0..<4 {
                #expect(abs(image.affineRAS[r][c] - entry.affine[r][c]) < 1e-5, "\(entry.name) affine[\(r)][\(c)]")
            } }
            #expect(crc(image.volume.voxels) == entry.crc32, "\(entry.name): voxels differ from nibabel's get_fdata()")
            // The geometry's own RAS affine reproduces the header's.
            let a = image.volume.geometry.affineRAS
            for r in 0..<3 { for c in 0..<4 { #expect(abs(a[r][c] - entry.affine[r][c]) < 1e-4, "\(entry.name) geometry") } }
        }
    }

    @Test(arguments: [("x.nii", 1, NIfTI.DataType.float32), ("x.nii.gz", 1, .int16), ("x.nii.gz", 2, .float32), ("x.nii", 2, .uint8)])
    func writtenFilesReadBackInWillisAndNibabel(name: String, version: Int, type: NIfTI.DataType) throws {
        let dir = try temporaryDirectory()
        let g = Geometry(origin: Vector3(10, -20, 30), spacing: Vector3(0.5, 0.75, 2),
                         columnDirection: Vector3(0, 1, 0), rowDirection: Vector3(0, 0, -1), sliceDirection: Vector3(-1, 0, 0))
        let values = (0..<(4 * 5 * 6)).map { Float(($0 * 7) % 200) }
        let volume = try Volume(shape: (4, 5, 6), voxels: values, geometry: g)
        let path = "\(dir)/\(name)"
        try NIfTI.write(volume, to: path, dataType: type, version: version)
        let back = try NIfTI.read(path)
        #expect(back.volume.voxels == values)
        #expect(back.version == version && back.dataType == type)
        #expect((back.volume.geometry.origin - g.origin).length < 1e-4)
        #expect((back.volume.geometry.sliceDirection - g.sliceDirection).length < 1e-6)
        try runOracle("nifti_probe.py", ["\(dir)/probe.json", path])
        let probe = try JSONDecoder().decode([NibabelEntry].self, from: Data(contentsOf: URL(fileURLWithPath: "\(dir)/probe.json")))[0]
        #expect(probe.shape == [6, 5, 4])
        #expect(probe.crc32 == crc(values))
        let a = g.affineRAS
        for r in 0..<4 { for c in 0..<4 { #expect(abs(probe.affine[r][c] - a[r][c]) < 1e-5) } }
        #expect(probe.qform_code == 1 && probe.sform_code == 1)
    }

    @Test func dicomSeriesConvertsWithTheSameCornersAsSimpleITK() throws {
        struct Case: Decodable {
            struct SITK: Decodable { struct Corner: Decodable { var index: [Int]; var point: [Double] }; var corners: [Corner] }
            var sitk: SITK?
        }
        let cases = try JSONDecoder().decode([String: Case].self, from: Data(contentsOf: URL(fileURLWithPath:
            try fixture("dicom_series.json", generator: "dicom_series.py"))))
        let dir = try temporaryDirectory()
        for name in ["axial", "sagittal", "coronal", "oblique"] {
            let series = try SeriesLoader().load("\(TestPaths.fixtures)/series/\(name)")
            let path = "\(dir)/\(name).nii.gz"
            try NIfTI.write(series.volume, to: path)
            try runOracle("nifti_probe.py", ["\(dir)/\(name).json", path])
            let probe = try JSONDecoder().decode([NibabelEntry].self, from: Data(contentsOf: URL(fileURLWithPath: "\(dir)/\(name).json")))[0]
            #expect(probe.crc32 == crc(series.volume.voxels), "\(name): voxels")
            for corner in try #require(cases[name]?.sitk).corners {
                let (i, j, k) = (Double(corner.index[0]), Double(corner.index[1]), Double(corner.index[2]))
                let a = probe.affine
                let ras = (0..<3).map { a[$0][0] * i + a[$0][1] * j + a[$0][2] * k + a[$0][3] }
                let lps = Vector3(-ras[0], -ras[1], ras[2])
                let q = Vector3(corner.point[0], corner.point[1], corner.point[2])
                #expect((lps - q).length < 1e-3, "\(name) corner \(corner.index): NIfTI \(lps) vs SimpleITK \(q)")
            }
        }
    }

    @Test func malformedFilesAreTypedErrors() throws {
        #expect(throws: NIfTI.Error.self) { try NIfTI.parse(Data(count: 10)) }
        #expect(throws: NIfTI.Error.self) { try NIfTI.parse(Data(count: 400)) }
        let good = NIfTI.encode(try Volume(shape: (2, 2, 2), voxels: Array(repeating: 1, count: 8), geometry: .identity))
        for cut in stride(from: 0, to: good.count, by: 5) {
            #expect(throws: NIfTI.Error.self) { try NIfTI.parse(good.prefix(cut)) }
        }
        #expect(throws: NIfTI.Error.self) { try NIfTI.read("/nonexistent.nii.gz") }
        let dir = try temporaryDirectory()
        var gz = try Data(contentsOf: URL(fileURLWithPath: {
            let p = "\(dir)/v.nii.gz"
            try? NIfTI.write(try! Volume(shape: (2, 2, 2), voxels: Array(repeating: 1, count: 8), geometry: .identity), to: p)
            return p
        }()))
        gz = gz.prefix(gz.count / 2)
        try gz.write(to: URL(fileURLWithPath: "\(dir)/cut.nii.gz"))
        #expect(throws: NIfTI.Error.self) { try NIfTI.read("\(dir)/cut.nii.gz") }
    }
}
