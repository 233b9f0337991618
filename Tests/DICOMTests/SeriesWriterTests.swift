import CZlib
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

    @Test(arguments: [TransferSyntax.explicitVRLittleEndian, .implicitVRLittleEndian])
    func writtenSeriesReadsBackIdentically(syntax: TransferSyntax) throws {
        let dir = try temporaryDirectory()
        let v = try volume()
        var writer = SeriesWriter()
        writer.syntax = syntax
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

    @Test func pydicomReadsWhatWillisWrites() throws {
        let dir = try temporaryDirectory()
        let v = try volume()
        let uids = try SeriesWriter().write(v, to: dir)
        let files = uids.map { "\(dir)/\($0).dcm" }
        try runOracle("pydicom_probe.py", ["\(dir)/probe.json"] + files)
        struct Probe: Decodable { var sop: String?; var position: [Double]?; var crc32: UInt32?; var shape: [Int]?; var error: String? }
        let probes = try JSONDecoder().decode([Probe].self, from: Data(contentsOf: URL(fileURLWithPath: "\(dir)/probe.json")))
        for (k, p) in probes.enumerated() {
            #expect(p.error == nil, "\(p.error ?? "")")
            #expect(p.sop == uids[k])
            #expect(p.shape == [12, 10])
            let stored: [Int16] = v.voxels[(k * 120)..<((k + 1) * 120)].map { Int16($0 + 1024) }
            let crc = stored.withUnsafeBytes { UInt32(crc32(0, $0.bindMemory(to: Bytef.self).baseAddress, uInt($0.count))) }
            #expect(p.crc32 == crc)
            let q = v.geometry.patient(i: 0, j: 0, k: Double(k))
            #expect(abs((p.position?[2] ?? .nan) - q.z) < 1e-6)
        }
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
