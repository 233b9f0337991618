import CSystemZlib
import DICOM
import Foundation
import TestSupport
import Testing
import VolumeCore

@Suite struct SeriesWriterTests {
    func volume() throws -> Volume {
        let (d, h, w) = (5, 12, 10)
        let values = (0..<(d * h * w)).map { Float(($0 * 37) % 2400) - 1024 }
        let theta = 0.3
        let g = Geometry(origin: Vector3(-12.5, 30.25, 80), spacing: Vector3(0.7, 0.8, 1.5),
                         columnDirection: Vector3(cos(theta), sin(theta), 0), rowDirection: Vector3(-sin(theta), cos(theta), 0),
                         sliceDirection: Vector3(0, 0, 1))
        return try Volume(shape: (d, h, w), voxels: values, geometry: g)
    }

    static let syntaxes: [TransferSyntax] = [.explicitVRLittleEndian, .implicitVRLittleEndian, .deflatedExplicitVRLittleEndian,
                                             .rleLossless, .jpegLSLossless, .jpeg2000Lossless]

    /// Signed: stored values −1024…1375 (intercept 0); unsigned: 0…2399 (intercept −1024).
    func writer(_ syntax: TransferSyntax, signed: Bool) -> SeriesWriter {
        var writer = SeriesWriter()
        writer.syntax = syntax
        writer.signedPixels = signed
        writer.intercept = signed ? 0 : -1024
        return writer
    }

    @Test(arguments: syntaxes, [true, false])
    func writtenSeriesReadsBackIdentically(syntax: TransferSyntax, signed: Bool) throws {
        let dir = try temporaryDirectory()
        let v = try volume()
        var writer = writer(syntax, signed: signed)
        writer.patientAge = "061Y"
        let uids = try writer.write(v, to: dir)
        let back = try SeriesLoader().load(dir)
        #expect(back.volume.voxels == v.voxels)
        #expect(back.slices.map(\.sopInstanceUID) == uids)
        #expect(back.seriesInstanceUID == writer.seriesInstanceUID)
        #expect(back.patientAge == "061Y")
        #expect(back.warnings.isEmpty, "\(back.warnings)")
        let g = back.volume.geometry, e = v.geometry
        #expect((g.origin - e.origin).length < 1e-6 && (g.columnDirection - e.columnDirection).length < 1e-6)
        #expect((g.spacing - e.spacing).length < 1e-6)
    }

    @Test(arguments: syntaxes, [true, false])
    func pydicomReadsWhatWillisWrites(syntax: TransferSyntax, signed: Bool) throws {
        let dir = try temporaryDirectory()
        let v = try volume()
        let writer = writer(syntax, signed: signed)
        let uids = try writer.write(v, to: dir)
        let files = uids.map { "\(dir)/\($0).dcm" }
        try runOracle("pydicom_probe.py", ["\(dir)/probe.json"] + files)
        struct Probe: Decodable {
            var sop: String?; var position: [Double]?; var crc32: UInt32?; var shape: [Int]?; var dtype: String?; var syntax: String?
            var error: String?
        }
        let probes = try JSONDecoder().decode([Probe].self, from: Data(contentsOf: URL(fileURLWithPath: "\(dir)/probe.json")))
        #expect(probes.count == uids.count)
        for (k, p) in probes.enumerated() {
            #expect(p.error == nil, "\(p.error ?? "")")
            #expect(p.sop == uids[k])
            #expect(p.shape == [12, 10])
            #expect(p.syntax == syntax.uid)
            #expect(p.dtype == (signed ? "int16" : "uint16"))
            let stored: [UInt16] = v.voxels[(k * 120)..<((k + 1) * 120)].map { UInt16(bitPattern: Int16($0 - Float(writer.intercept))) }
            let crc = stored.withUnsafeBytes { UInt32(crc32(0, $0.bindMemory(to: Bytef.self).baseAddress, uInt($0.count))) }
            #expect(p.crc32 == crc)
            let q = v.geometry.patient(i: 0, j: 0, k: Double(k))
            #expect(abs((p.position?[2] ?? .nan) - q.z) < 1e-6)
        }
    }

    /// PackBits runs of 2–128 bytes and literals of 1–128, across 300-wide rows with runs of every length.
    @Test func runsOfEveryLengthSurviveRLE() throws {
        let dir = try temporaryDirectory()
        var values: [Float] = []
        var run = 1
        while values.count < 4 * 300 {
            values += [Float](repeating: Float(run % 7) * 100, count: run)
            run = run % 260 + 1
        }
        let v = try Volume(shape: (1, 4, 300), voxels: Array(values.prefix(1200)),
                           geometry: Geometry(origin: .zero, spacing: Vector3(1, 1, 1), columnDirection: Vector3(1, 0, 0),
                                              rowDirection: Vector3(0, 1, 0), sliceDirection: Vector3(0, 0, 1)))
        var writer = SeriesWriter()
        writer.syntax = .rleLossless
        try writer.write(v, to: dir)
        #expect(try SeriesLoader().load(dir).volume.voxels == v.voxels)
    }

    @Test func uidsAreValidAndUnique() {
        let uids = (0..<200).map { _ in UID.make() }
        #expect(Set(uids).count == 200)
        for u in uids {
            #expect(u.hasPrefix("2.25.") && u.count <= 64)
            #expect(u.dropFirst(5).allSatisfy { $0.isNumber })
            #expect(!u.dropFirst(5).hasPrefix("0") || u == "2.25.0")
        }
    }
}
