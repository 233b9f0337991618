import Anatomy
import DICOM
import Dataset
import Foundation
import NIfTI
import Preprocessing
import Synth
import TestSupport
import Testing
import VolumeCore

/// `options` written into a new folder, then changed by `change` and written into another: each folder
/// with its cases.
func generatedTwice(_ options: SynthOptions, changing change: (inout SynthOptions) -> Void) throws
    -> ((String, [SynthCase]), (String, [SynthCase])) {
    let (first, second) = (try temporaryDirectory(), try temporaryDirectory())
    var changed = options
    change(&changed)
    return ((first, try SynthDataset.generate(options, into: first)), (second, try SynthDataset.generate(changed, into: second)))
}

@Suite struct SynthDatasetTests {
    @Test func writesAValidRSNALayoutWhoseLabelsMatchTheImages() throws {
        let root = try temporaryDirectory()
        var options = SynthOptions(count: 12, size: .small, seed: 21)
        options.segmentationFraction = 0.5
        let cases = try SynthDataset.generate(options, into: root)
        // The tables pass Willis's own validation.
        let labels = try RSNATables.readLabels("\(root)/train.csv")
        let points = try RSNATables.readLocalizers("\(root)/train_localizers.csv")
        #expect(labels.count == 12)
        #expect(points.count == cases.reduce(0) { $0 + $1.aneurysms.count })
        #expect(Set(labels.map(\.seriesInstanceUID)).count == 12)
        for c in cases {
            let row = try #require(labels.first { $0.seriesInstanceUID == c.seriesInstanceUID })
            #expect(row.isPositive == !c.aneurysms.isEmpty)
            for a in c.aneurysms { #expect(row[a.location]) }
            let series = try SeriesLoader().load("\(root)/series/\(c.seriesInstanceUID)")
            #expect(series.volume.shape.depth == SynthSize.small.shape.depth)
            #expect(series.warnings.isEmpty, "\(series.warnings)")
            #expect(series.modality == (c.modality == .cta ? "CT" : "MR"))
            #expect(series.transferSyntaxes == [c.syntax])
            let brain = series.volume[series.volume.shape.depth / 2, series.volume.rows / 2, series.volume.columns / 2 + 20]
            for (a, p) in zip(c.aneurysms, points.filter { $0.seriesInstanceUID == c.seriesInstanceUID }) {
                // The localizer lands on the aneurysm: its slice, column and row map back near the centre.
                let q = try #require(series.patientPoint(sopInstanceUID: p.sopInstanceUID, x: p.x, y: p.y))
                let g = series.volume.geometry
                #expect((q - a.center).length <= g.spacing.z / 2 + 1e-6, "\(c.index) \(a.location): \(q) vs \(a.center)")
                // And the image shows it: contrast-filled (or a flow void on T2) at the centre.
                let v = g.voxel(a.center)
                let value = series.volume[Int(v.z.rounded()), Int(v.y.rounded()), Int(v.x.rounded())]
                if a.radius * 2 >= 4 {
                    if c.modality == .mriT2 { #expect(value < brain) } else { #expect(value > brain + 100, "\(c.modality) \(value) vs \(brain)") }
                }
            }
            if c.hasSegmentation {
                let cow = try NIfTI.read("\(root)/segmentations/\(c.seriesInstanceUID)_cowseg.nii")
                #expect(cow.dataType == .uint8)
                #expect(cow.volume.voxels.allSatisfy { $0 >= 0 && $0 <= 13 && $0 == $0.rounded() })
                #expect(Set(cow.volume.voxels).count >= 10, "most of the 13 labels are drawn")
                // Same physical box as the series (voxel order may differ: the loader sorts slices by position).
                func corners(_ v: Volume) -> [Vector3] {
                    var out: [Vector3] = []
                    for k in [0, v.shape.depth - 1] { for j in [0, v.rows - 1] { for i in [0, v.columns - 1] {
                        out.append(v.geometry.patient(i: Double(i), j: Double(j), k: Double(k)))
                    } } }
                    return out.sorted { ($0.x, $0.y, $0.z) < ($1.x, $1.y, $1.z) }
                }
                #expect(zip(corners(cow.volume), corners(series.volume)).allSatisfy { ($0 - $1).length < 1e-3 })
                // The aneurysm is labelled with its location in the cowseg file.
                for a in c.aneurysms where a.radius * 2 >= 4 {
                    let v = cow.volume.geometry.voxel(a.center)
                    #expect(cow.volume[Int(v.z.rounded()), Int(v.y.rounded()), Int(v.x.rounded())] == Float(a.location.rawValue + 1))
                }
                let mask = try NIfTI.read("\(root)/segmentations/\(c.seriesInstanceUID).nii")
                #expect(zip(mask.volume.voxels, cow.volume.voxels).allSatisfy { ($0 > 0) == ($1 > 0) })
            }
        }
        #expect(cases.contains { $0.hasSegmentation })
        #expect(Set(cases.map(\.modality)).count >= 2)
    }

    @Test func tiltedSeriesHoldTheSameCasesOffTheAxesAndTheTruthFileMatches() throws {
        var options = SynthOptions(count: 6, size: .small, seed: 41)
        options.positiveFraction = 1
        let ((standardRoot, standard), (tiltedRoot, tilted)) = try generatedTwice(options) { $0.orientations = .tilted }
        // The same cases (labels, aneurysms) in other slice planes.
        #expect(standard.map(\.seriesInstanceUID) == tilted.map(\.seriesInstanceUID))
        #expect(standard.map(\.aneurysms) == tilted.map(\.aneurysms))
        let truth = try SynthAneurysm.read("\(tiltedRoot)/synth_aneurysms.csv")
        #expect(truth.count == tilted.reduce(0) { $0 + $1.aneurysms.count } && !truth.isEmpty)
        let points = try RSNATables.readLocalizers("\(tiltedRoot)/train_localizers.csv")
        for (c, plain) in zip(tilted, standard) {
            let series = try SeriesLoader().load("\(tiltedRoot)/series/\(c.seriesInstanceUID)")
            let reference = try SeriesLoader().load("\(standardRoot)/series/\(c.seriesInstanceUID)")
            // The slice planes are the standard ones turned by 8–25°: the angle of the rotation taking the
            // standard frame (column, row, their cross product) to the tilted one.
            let (g, h) = (series.volume.geometry, reference.volume.geometry)
            let trace = g.columnDirection.dot(h.columnDirection) + g.rowDirection.dot(h.rowDirection)
                + g.columnDirection.cross(g.rowDirection).dot(h.columnDirection.cross(h.rowDirection))
            let degrees = acos(max(-1, min(1, (trace - 1) / 2))) * 180 / .pi
            #expect(degrees >= 8 - 0.01 && degrees <= 25 + 0.01, "\(c.index): \(degrees)°")
            #expect(plain.aneurysms.count == c.aneurysms.count)
            // The truth file gives each aneurysm's centre and size; its localizer lands there.
            let rows = truth.filter { $0.seriesInstanceUID == c.seriesInstanceUID }
            #expect(rows.map(\.location) == c.aneurysms.map(\.location))
            for (row, (a, p)) in zip(rows, zip(c.aneurysms, points.filter { $0.seriesInstanceUID == c.seriesInstanceUID })) {
                #expect((row.center - a.center).length < 1e-2 && abs(row.diameter - 2 * a.radius) < 1e-2)
                let q = try #require(series.patientPoint(sopInstanceUID: p.sopInstanceUID, x: p.x, y: p.y))
                #expect((q - row.center).length <= g.spacing.z / 2 + 1e-2, "\(q) vs \(row.center)")
            }
        }
        let acquisitions = try String(contentsOfFile: "\(tiltedRoot)/synth_series.csv", encoding: .utf8)
        #expect(acquisitions.split(separator: "\n").count == 7)
    }

    @Test func sameSeedSameFilesOtherSeedOtherFiles() throws {
        let a = try temporaryDirectory(), b = try temporaryDirectory(), c = try temporaryDirectory()
        let options = SynthOptions(count: 3, size: .small, seed: 5)
        let first = try SynthDataset.generate(options, into: a)
        try SynthDataset.generate(options, into: b)
        try SynthDataset.generate(SynthOptions(count: 3, size: .small, seed: 6), into: c)
        let table = { (root: String) in try String(contentsOfFile: "\(root)/train.csv", encoding: .utf8) }
        #expect(try table(a) == table(b))
        #expect(try table(a) != table(c))
        let uid = first[0].seriesInstanceUID
        let files = try FileManager.default.contentsOfDirectory(atPath: "\(a)/series/\(uid)").sorted()
        #expect(try Data(contentsOf: URL(fileURLWithPath: "\(a)/series/\(uid)/\(files[3])"))
                    == Data(contentsOf: URL(fileURLWithPath: "\(b)/series/\(uid)/\(files[3])")))
    }

    /// The syntax mix changes only how pixels are stored: the same seed gives the same voxels whether
    /// written uncompressed or with deflate, RLE, JPEG-LS and JPEG 2000.
    @Test func compressedSeriesHoldTheSameVoxels() throws {
        var options = SynthOptions(count: 6, size: .small, seed: 33)
        options.syntaxes = .uncompressed
        let ((plain, a), (packed, b)) = try generatedTwice(options) { $0.syntaxes = .compressed }
        #expect(Set(b.map(\.syntax)).isSubset(of: Set(SyntaxMix.compressed.weights.map(\.0))))
        #expect(Set(b.map(\.syntax)).count >= 2)
        for (x, y) in zip(a, b) {
            #expect(x.seriesInstanceUID == y.seriesInstanceUID)
            #expect(x.syntax != y.syntax)
            let u = try SeriesLoader().load("\(plain)/series/\(x.seriesInstanceUID)")
            let v = try SeriesLoader().load("\(packed)/series/\(y.seriesInstanceUID)")
            #expect(v.transferSyntaxes == [y.syntax])
            #expect(u.volume.voxels == v.volume.voxels)
        }
    }

    /// `--vessel-ends tapered` draws the cases of `rounded` (the same series, modalities and aneurysms, only
    /// those on a narrowing piece moved onto its narrower wall) but leaves no ball of a vessel's radius
    /// where an artery ends: the MCA's last point holds a fifth of its radius and nothing beyond it, the
    /// carotid runs on past its first point, and the anterior communicating artery reaches both ACAs.
    @Test func taperedEndsKeepTheCasesAndLeaveNoBallAtADeadEnd() throws {
        var options = SynthOptions(count: 8, size: .small, seed: 23)
        options.positiveFraction = 1
        let ((_, rounded), (_, tapered)) = try generatedTwice(options) { $0.vesselEnds = .tapered }
        #expect(rounded.map(\.seriesInstanceUID) == tapered.map(\.seriesInstanceUID))
        #expect(rounded.map(\.modality) == tapered.map(\.modality))
        var moved = 0
        for (a, b) in zip(rounded.flatMap(\.aneurysms), tapered.flatMap(\.aneurysms)) {
            #expect(a.location == b.location && a.radius == b.radius)
            let shift = (a.center - b.center).length
            // Only on a narrowing piece (MCA, ACA, PCA), by at most 0.8 · t ≤ 0.64 of its radius (the MCA's at most 1.6 · 1.1 · 1.15 mm).
            #expect(shift < 0.64 * 1.6 * 1.1 * 1.15 + 1e-9, "\(a.location): \(shift) mm")
            if shift > 1e-9 {
                moved += 1
                #expect([.leftMCA, .rightMCA, .leftACA, .rightACA, .otherPosteriorCirculation].contains(b.location), "\(b.location) moved")
            }
        }
        #expect(rounded.flatMap(\.aneurysms).count == tapered.flatMap(\.aneurysms).count && moved < tapered.flatMap(\.aneurysms).count)

        // One tree both ways, rendered at 0.5 mm around the places that differ.
        var (r1, r2) = (SplitMix64(seed: 7), SplitMix64(seed: 7))
        let (plain, thin) = (CircleOfWillis.make(ends: .rounded, using: &r1), CircleOfWillis.make(ends: .tapered, using: &r2))
        #expect(plain.map(\.points) == thin.map(\.points) && plain.map(\.radius) == thin.map(\.radius))
        func labels(_ tree: [VesselSegment], around centre: Vector3) throws -> (RenderedCase, Geometry) {
            let g = Geometry(origin: centre - Vector3(10, 10, 10), spacing: Vector3(0.5, 0.5, 0.5), columnDirection: Vector3(1, 0, 0),
                             rowDirection: Vector3(0, 1, 0), sliceDirection: Vector3(0, 0, 1))
            var rng = SplitMix64(seed: 1)
            return (try Phantom.render(shape: (41, 41, 41), geometry: g, tree: tree, aneurysms: [],
                                       contrast: .of(.cta, using: &rng), seed: 1), g)
        }
        func labelled(_ c: RenderedCase, _ g: Geometry, where keep: (Vector3) -> Bool) -> Int {
            var n = 0
            for k in 0..<41 { for j in 0..<41 { for i in 0..<41 where c.vesselLabels[(k * 41 + j) * 41 + i] > 0 {
                if keep(g.patient(i: Double(i), j: Double(j), k: Double(k))) { n += 1 }
            } } }
            return n
        }
        let mca = try #require(thin.first { $0.location == .leftMCA })
        let (end, before) = (mca.points[mca.points.count - 1], mca.points[mca.points.count - 2])
        #expect(abs(mca.radius(piece: mca.points.count - 2, t: 1) - mca.radius / 5) < 1e-12 && mca.radius(piece: 0, t: 1) == mca.radius)
        let axis = (end - before).normalized
        let beyond = { (p: Vector3) in (p - end).dot(axis) > 0 && (p - end).length < 3 }
        let (a, ga) = try labels(plain, around: end), (b, gb) = try labels(thin, around: end)
        let hemisphere = 2.0 / 3 * Double.pi * pow(mca.radius, 3) / 0.125  // voxels of the rounded end's cap
        #expect(Double(labelled(a, ga, where: beyond)) > 0.6 * hemisphere)
        #expect(labelled(b, gb, where: beyond) <= 2, "tapered: \(labelled(b, gb, where: beyond)) voxels beyond the MCA's end")
        let halfway = before + (end - before) * 0.5  // still a vessel there, thinner than before
        #expect(labelled(b, gb) { ($0 - halfway).length < 0.3 } > 0)

        let ica = try #require(thin.first { $0.location == .leftInfraclinoidICA })
        let below = ica.points[0] + (ica.points[0] - ica.points[1]).normalized * 6
        let (c, gc) = try labels(plain, around: below), (d, gd) = try labels(thin, around: below)
        #expect(labelled(c, gc) { ($0 - below).length < 1 } == 0)
        #expect(labelled(d, gd) { ($0 - below).length < 1 } > 0)

        let acomm = try #require(thin.first { $0.location == .anteriorCommunicating })
        #expect(acomm.continuations.count == 2 && plain.allSatisfy(\.continuations.isEmpty))
        for (line, side) in zip(acomm.continuations, [LocationLabel.leftACA, .rightACA]) {
            let aca = try #require(thin.first { $0.location == side })
            let onACA = zip(aca.points, aca.points.dropFirst()).map { p, q in
                (0...1000).map { (p + (q - p) * (Double($0) / 1000) - line[1]).length }.min() ?? .infinity
            }.min() ?? .infinity
            #expect([acomm.points[0], acomm.points[acomm.points.count - 1]].contains(line[0]) && onACA < 0.01, "\(side): \(onACA) mm")
        }
    }

    @Test func aboutFortyPercentArePositive() throws {
        let root = try temporaryDirectory()
        let cases = try SynthDataset.generate(SynthOptions(count: 60, size: .small, seed: 9), into: root)
        let share = Double(cases.filter { !$0.aneurysms.isEmpty }.count) / 60
        #expect(share > 0.25 && share < 0.55, "\(share)")
        let diameters = cases.flatMap(\.aneurysms).map { $0.radius * 2 }
        #expect(diameters.allSatisfy { $0 >= 1.5 && $0 <= 8 })
    }
}

@Suite struct ImprovedCropOnSynthTests {
    /// The improved mode's head locator puts every aneurysm of the synthetic set inside its crop.
    @Test func theCropHoldsTheCircleOfWillis() throws {
        let root = try temporaryDirectory()
        let cases = try SynthDataset.generate(SynthOptions(count: 10, size: .small, seed: 31), into: root)
        var checked = 0
        for c in cases {
            let series = try SeriesLoader().load("\(root)/series/\(c.seriesInstanceUID)")
            let (_, record) = ImprovedPreprocessing.prepare(series.volume, modality: series.modality)
            let shape = ImprovedPlan().shape
            for a in c.aneurysms {
                let v = record.output.voxel(a.center)
                #expect(v.x >= 0 && v.y >= 0 && v.z >= 0 && v.x <= Double(shape[2] - 1) && v.y <= Double(shape[1] - 1)
                            && v.z <= Double(shape[0] - 1), "\(c.modality) \(c.orientation): \(a.location) at \(v)")
                checked += 1
            }
        }
        #expect(checked > 0)
    }
}
