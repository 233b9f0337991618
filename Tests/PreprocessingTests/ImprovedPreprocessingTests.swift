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

    /// With a subdivision of 2 the image is sampled at half the spacing over the same box: the record
    /// keeps the grid, every sample holds the field at its own patient position (o − s/4 + m·s/2 per
    /// axis), and the mean of the 8 samples inside a grid voxel is the field at that voxel's centre (the
    /// field is linear), which is what the grid alone holds.
    @Test func aSubdividedInputSamplesTheGridsBoxTwiceAsFinely() throws {
        let g = Geometry(origin: Vector3(-35, -40, -30), spacing: Vector3(0.8, 0.9, 1.7), columnDirection: Vector3(1, 0, 0),
                         rowDirection: Vector3(0, 1, 0), sliceDirection: Vector3(0, 0, 1))
        let volume = try linearField((40, 90, 80), g)
        var fine = plan
        fine.subdivision = 2
        let (coarseInput, coarse) = ImprovedPreprocessing.prepare(volume, modality: "CT", plan: plan, normalize: false)
        let (input, record) = ImprovedPreprocessing.prepare(volume, modality: "CT", plan: fine, normalize: false)
        #expect(record.output == coarse.output)
        #expect(input.count == 8 * 16 * 20 * 24)
        let o = coarse.output.origin
        var allInside = [Bool](repeating: true, count: 16 * 20 * 24)
        var checked = 0
        for k in 0..<32 { for j in 0..<40 { for i in 0..<48 {
            let p = Vector3(o.x - 0.375 + 0.75 * Double(i), o.y - 0.375 + 0.75 * Double(j), o.z - 0.375 + 0.75 * Double(k))
            let v = g.voxel(p)
            let within = v.x >= 0 && v.y >= 0 && v.z >= 0 && v.x <= 79 && v.y <= 89 && v.z <= 39
            let value = input[(k * 40 + j) * 48 + i]
            if within {
                checked += 1
                #expect(abs(Double(value) - (p.x + 2 * p.y + 3 * p.z)) < 1e-2, "sample (\(i),\(j),\(k))")
            } else {
                allInside[((k / 2) * 20 + j / 2) * 24 + i / 2] = false
            }
        } } }
        #expect(checked > 8 * 16 * 20 * 24 / 2)
        var p = Preparation(mode: .improved, shape: plan.shape)
        (p.spacing, p.centreOffset, p.subdivision) = (plan.spacing, plan.centreOffset, 2)
        let onGrid = p.onGrid(input)
        var compared = 0
        for (n, inside) in allInside.enumerated() where inside {
            compared += 1
            #expect(abs(onGrid[n] - coarseInput[n]) < 1e-2, "grid voxel \(n)")
        }
        #expect(compared > 16 * 20 * 24 / 2)
    }

    @Test func ctIsWindowedAndMRIsScaledByItsHead() throws {
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
        let (mr, mrRecord) = ImprovedPreprocessing.prepare(volume, modality: "MRA", plan: plan)
        #expect(mrRecord.intensity == .foregroundScale(cap: 8) && mrRecord.intensityWarning == nil)
        // The crop lies inside the ball: its median (300) becomes 1.
        let mean = mr.reduce(0, +) / Float(mr.count)
        #expect(abs(mean - 1) < 0.03, "mean \(mean)")
        var legacy = plan
        legacy.mrIntensity = .zScore
        let (z, _) = ImprovedPreprocessing.prepare(volume, modality: "MRA", plan: legacy)
        let zMean = z.reduce(0, +) / Float(z.count)
        let zStd = (z.reduce(0) { $0 + ($1 - zMean) * ($1 - zMean) } / Float(z.count)).squareRoot()
        #expect(abs(zMean) < 0.1 && abs(zStd - 1) < 0.1, "mean \(zMean) std \(zStd)")
    }

    /// An MRA-like head: air 0, brain 120·gain, one thin bright vessel (900·gain) that fills under 0.5 %
    /// of the crop, and noise.
    func angiogram(gain: Float) throws -> (volume: Volume, vessel: (Int, Int, Int), brain: (Int, Int, Int)) {
        let n = 64
        let g = Geometry(origin: Vector3(-63, -63, -63), spacing: Vector3(2, 2, 2), columnDirection: Vector3(1, 0, 0),
                         rowDirection: Vector3(0, 1, 0), sliceDirection: Vector3(0, 0, 1))
        var values = [Float](repeating: 0, count: n * n * n)
        var rng = SplitMix(state: 7)
        for k in 0..<n { for j in 0..<n { for i in 0..<n {
            let p = g.patient(i: Double(i), j: Double(j), k: Double(k))
            let inHead = (p.x / 55) * (p.x / 55) + (p.y / 60) * (p.y / 60) + (p.z / 58) * (p.z / 58) < 1
            let inVessel = (p.y - 1) * (p.y - 1) + (p.z - 1) * (p.z - 1) < 2.3 * 2.3 && abs(p.x) < 40
            let tissue: Float = inVessel ? 900 : inHead ? 120 : 0
            values[(k * n + j) * n + i] = gain * (tissue + 6 * (rng.unit() - 0.5))
        } } }
        return (try Volume(shape: (n, n, n), voxels: values, geometry: g), (31, 32, 32), (31, 32, 48))
    }

    @Test func mrBrightVesselsKeepTheirContrastWhateverTheGain() throws {
        var p = ImprovedPlan()
        p.shape = [48, 56, 56]
        p.spacing = 2
        p.centreOffset = [0, 0, 0]
        let (volume, _, _) = try angiogram(gain: 1)
        let (scaled, record) = ImprovedPreprocessing.prepare(volume, modality: "MR", plan: p)
        #expect(record.intensityWarning == nil)
        // The prepared grid is the source grid shifted by whole voxels here, so read both by patient position.
        func at(_ values: [Float], _ point: Vector3) -> Float {
            let v = record.output.voxel(point)
            return values[(Int(v.z.rounded()) * 56 + Int(v.y.rounded())) * 56 + Int(v.x.rounded())]
        }
        let vesselPoint = Vector3(1, 1, 1), brainPoint = Vector3(1, 25, 1)
        let bright = scaled.filter { $0 > 3 }.count
        #expect(bright > 0 && Double(bright) / Double(scaled.count) < 0.005, "vessel voxels \(bright)")
        let brain = at(scaled, brainPoint), vessel = at(scaled, vesselPoint)
        #expect(abs(brain - 1) < 0.05, "brain \(brain)")
        #expect(abs(vessel / brain - 7.5) < 0.4, "vessel \(vessel), brain \(brain)")
        // The scanner's gain cancels.
        let (other, _) = ImprovedPreprocessing.prepare(try angiogram(gain: 3.7).volume, modality: "MR", plan: p)
        let worst = zip(scaled, other).map { abs($0 - $1) }.max() ?? 1
        #expect(worst < 1e-3, "largest difference \(worst)")
        // The earlier z-score rule, kept for weights trained with it, clips such a vessel to the brain's level.
        var legacy = p
        legacy.mrIntensity = .zScore
        let (z, _) = ImprovedPreprocessing.prepare(volume, modality: "MR", plan: legacy)
        #expect(at(z, vesselPoint) - at(z, brainPoint) < 0.5)
    }

    @Test func anMRWithNothingInViewIsPreparedWithAWarning() throws {
        let g = Geometry(origin: Vector3(0, 0, 0), spacing: Vector3(1, 1, 1), columnDirection: Vector3(1, 0, 0),
                         rowDirection: Vector3(0, 1, 0), sliceDirection: Vector3(0, 0, 1))
        for fill: Float in [0, -5] {
            let volume = try Volume(shape: (40, 40, 40), voxels: [Float](repeating: fill, count: 40 * 40 * 40), geometry: g)
            let (input, record) = ImprovedPreprocessing.prepare(volume, modality: "MR", plan: plan)
            #expect(record.intensityWarning?.contains("no head found") == true, "fill \(fill)")
            #expect(input.allSatisfy { $0.isFinite && $0 >= 0 && $0 <= 8 })
        }
    }
}

/// A small deterministic generator for test volumes.
struct SplitMix {
    var state: UInt64
    mutating func unit() -> Float {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Float((z ^ (z >> 31)) >> 40) / Float(1 << 24)
    }
}

/// The one rule by which a voxel from elsewhere (a peak, the dot filter's point, a vessel lookup) may index a
/// grid: inside exactly where a `Volume` of that shape has a voxel at (i, j, k), for a grid whose three edges
/// differ, so an axis read in the shape's order instead of the voxel's is caught.
@Suite struct GridVoxelTests {
    @Test func aVoxelIsInsideWhereAVolumeOfTheShapeHasOne() throws {
        let volume = try Volume(shape: (depth: 2, height: 3, width: 5), voxels: (0..<30).map(Float.init), geometry: .identity)
        let shape = [volume.shape.depth, volume.rows, volume.columns]
        var inside = 0
        for k in -1...6 { for j in -1...6 { for i in -1...6 {
            let has = (0..<volume.columns).contains(i) && (0..<volume.rows).contains(j) && (0..<volume.shape.depth).contains(k)
            #expect(isVoxel([i, j, k], inside: shape) == has, "(\(i), \(j), \(k))")
            if isVoxel([i, j, k], inside: shape) { inside += 1 }
        } } }
        #expect(inside == volume.count, "as many voxels inside as the volume holds")
        #expect(!isVoxel([0, 0], inside: shape) && !isVoxel([0, 0, 0, 0], inside: shape) && !isVoxel([0, 0, 0], inside: [2, 3]))
    }
}

@Suite struct PreparationSettingsTests {
    /// Weights written before the MR rule was a setting were trained on z-scored MR: their stored
    /// preparation, which lacks the key, must read back as that rule; new settings round-trip, and the
    /// cache folder differs between the rules.
    @Test func storedPreparationsKeepTheirMRRule() throws {
        let old = #"{"mode":"improved","shape":[80,96,96],"spacing":1.6,"centreOffset":[0,0,-12]}"#
        let legacy = try Preparation.from(json: old)
        #expect(legacy.mrIntensity == .zScore && legacy.plan.intensity(forModality: "MR") == .robustZScore(lowPercentile: 0.5, highPercentile: 99.5))
        var current = Preparation(mode: .improved, shape: [80, 96, 96])
        current.spacing = 1.6
        #expect(current.mrIntensity == .foregroundScale)
        #expect(try Preparation.from(json: current.json) == current)
        #expect(current.cacheKey != legacy.cacheKey)
        #expect(current.plan.intensity(forModality: "CT") == legacy.plan.intensity(forModality: "CTA"))
        // Without the subdivision key a stored preparation samples the grid itself; with it, it
        // round-trips, needs 8× the values and its own cache folder; out-of-range values are refused.
        #expect(legacy.subdivision == 1 && legacy.inputCount == 80 * 96 * 96)
        var finer = current
        finer.subdivision = 2
        #expect(try Preparation.from(json: finer.json) == finer)
        #expect(finer.inputCount == 8 * 80 * 96 * 96 && finer.inputShape == [160, 192, 192])
        #expect(finer.cacheKey != current.cacheKey)
        finer.subdivision = 5
        #expect(throws: PreparationError.self) { try finer.validate() }
    }
}
