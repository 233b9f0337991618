import Foundation
import Preprocessing
import Testing
import VolumeCore

@Suite struct ImprovedPreprocessingTests {
    /// A volume whose value at each voxel is a linear function of its patient position, in `geometry`.
    func linearField(_ shape: (Int, Int, Int), _ g: Geometry) throws -> Volume {
        let (d, h, w) = shape
        var values = [Float](repeating: 0, count: d * h * w)
        for k in 0..<d { for j in 0..<h { for i in 0..<w {
            let p = g.patient(i: Double(i), j: Double(j), k: Double(k))
            values[(k * h + j) * w + i] = Float(p.x + 2 * p.y + 3 * p.z)
        } } }
        return try Volume(shape: shape, voxels: values, geometry: g)
    }

    var plan: ImprovedPlan {
        var p = ImprovedPlan()
        p.shape = [16, 20, 24]
        p.spacing = 1.5
        p.centreOffset = [0, 0, 0]
        return p
    }

    @Test(arguments: ["axial", "sagittal", "oblique"])
    func resamplesOntoAnLPSGridKeepingPatientPositions(orientation: String) throws {
        let g: Geometry
        switch orientation {
        case "sagittal":
            g = Geometry(origin: Vector3(30, -40, 45), spacing: Vector3(0.9, 1.1, 2), columnDirection: Vector3(0, 1, 0),
                         rowDirection: Vector3(0, 0, -1), sliceDirection: Vector3(-1, 0, 0))
        case "oblique":
            let t = 0.35
            g = Geometry(origin: Vector3(-35, -40, -30), spacing: Vector3(1, 1, 1.5), columnDirection: Vector3(cos(t), sin(t), 0),
                         rowDirection: Vector3(-sin(t), cos(t), 0), sliceDirection: Vector3(0, 0, 1))
        default:
            g = Geometry(origin: Vector3(-35, -40, -30), spacing: Vector3(0.8, 0.9, 1.7), columnDirection: Vector3(1, 0, 0),
                         rowDirection: Vector3(0, 1, 0), sliceDirection: Vector3(0, 0, 1))
        }
        let volume = try linearField((40, 90, 80), g)
        let (out, record) = ImprovedPreprocessing.prepare(volume, modality: "CT", plan: plan, normalize: false)
        let o = record.output
        #expect(o.columnDirection == Vector3(1, 0, 0) && o.rowDirection == Vector3(0, 1, 0) && o.sliceDirection == Vector3(0, 0, 1))
        #expect(o.spacing == Vector3(1.5, 1.5, 1.5))
        let background = volume.voxels.min() ?? 0
        var inside = 0
        for k in 0..<16 { for j in 0..<20 { for i in 0..<24 {
            let p = o.patient(i: Double(i), j: Double(j), k: Double(k))
            let value = out[(k * 20 + j) * 24 + i]
            let v = volume.geometry.voxel(p)
            let within = v.x >= 0 && v.y >= 0 && v.z >= 0 && v.x <= 79 && v.y <= 89 && v.z <= 39
            if within {
                inside += 1
                #expect(abs(Double(value) - (p.x + 2 * p.y + 3 * p.z)) < 1e-2, "\(orientation) (\(i),\(j),\(k))")
            } else {
                #expect(value == background)
            }
        } } }
        #expect(inside > 16 * 20 * 24 / 2)
        #expect(abs(record.outsideFraction - Double(16 * 20 * 24 - inside) / Double(16 * 20 * 24)) < 1e-12)
    }

    @Test func ctIsWindowedAndMRIsZScored() throws {
        let g = Geometry(origin: Vector3(-40, -40, -40), spacing: Vector3(1, 1, 1), columnDirection: Vector3(1, 0, 0),
                         rowDirection: Vector3(0, 1, 0), sliceDirection: Vector3(0, 0, 1))
        // A bright ball (the head) in a dark box.
        var values = [Float](repeating: 0, count: 80 * 80 * 80)
        var rng = SystemRandomNumberGenerator()
        for k in 0..<80 { for j in 0..<80 { for i in 0..<80 where (i - 40) * (i - 40) + (j - 40) * (j - 40) + (k - 40) * (k - 40) < 30 * 30 {
            values[(k * 80 + j) * 80 + i] = 300 + Float.random(in: -50...50, using: &rng)
        } } }
        let volume = try Volume(shape: (80, 80, 80), voxels: values, geometry: g)
        let (ct, ctRecord) = ImprovedPreprocessing.prepare(volume, modality: "CTA", plan: plan)
        #expect(ct.allSatisfy { $0 >= 0 && $0 <= 1 })
        #expect(ctRecord.intensity == .window(low: -100, high: 700))
        // The grid is centred on the head.
        let c = ctRecord.output.patient(i: 11.5, j: 9.5, k: 7.5)
        #expect(c.length < 2, "grid centre \(c)")
        let (mr, _) = ImprovedPreprocessing.prepare(volume, modality: "MRA", plan: plan)
        let head = zip(mr, ct).filter { $0.1 > (0 + 100) / 800 + 0.05 }.map(\.0)
        let mean = head.reduce(0, +) / Float(head.count)
        let std = (head.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Float(head.count)).squareRoot()
        #expect(abs(mean) < 0.1 && abs(std - 1) < 0.1, "mean \(mean) std \(std)")
    }
}
