import Foundation
@testable import Preprocessing
import TestSupport
import Testing
import VolumeCore

/// The dot filter against scipy and numpy (tools/oracles/dot_filter.py, which runs the definition in
/// tools/analysis/hessian_blobs.py) on a tube with a ball on its wall.
@Suite struct DotFilterTests {
    struct Head: Decodable {
        var shape: [Int]
        var spacing: [Double]
        var depth: Double
        var maxima: [Int]
        var maximaValues: [Float]
        var regionVoxels: Int
        var ballVoxel: [Int]
    }

    struct Junction: Decodable {
        var shape: [Int]
        var spacing: [Double]
        var reach: [Int]
        var smallCentreMM: [Double]
        var acrossScales: [Int]
        var acrossScalesValues: [Float]
        var eachScale: [Int]
        var eachScaleValues: [Float]
    }

    struct Case: Decodable {
        var head: Head
        var junction: Junction
        var shape: [Int]
        var spacing: [Double]
        var scales: [Double]
        var reach: [Int]
        var derivatives: [String: [Double]]
        var maxima: [Int]
        var maximaValues: [Float]
        var ballVoxel: [Int]
    }

    func load() throws -> (Case, String) {
        let meta = try fixture("dot_filter.json", generator: "dot_filter.py")
        return (try JSONDecoder().decode(Case.self, from: Data(contentsOf: URL(fileURLWithPath: meta))), "\(TestPaths.fixtures)/dot_filter")
    }

    func floats(_ path: String) throws -> [Float] {
        try Data(contentsOf: URL(fileURLWithPath: path)).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    @Test func derivativesMatchScipy() throws {
        let (c, folder) = try load()
        let image = try floats("\(folder)/image.f32")
        for (name, d) in c.derivatives {
            let expected = try floats("\(folder)/\(name).f32")
            let ours = DotFilter.derivative(image, shape: c.shape, axis: Int(d[0]), sigma: d[1], order: Int(d[2]))
            let scale = expected.map(abs).max() ?? 1
            #expect(maxAbsoluteError(ours, expected) <= 1e-5 * max(scale, 1), "\(name): max abs error \(maxAbsoluteError(ours, expected)) of \(scale)")
        }
    }

    @Test func measureAndMaximaMatchTheAnalysis() throws {
        let (c, folder) = try load()
        let image = try floats("\(folder)/image.f32")
        let mask = try Data(contentsOf: URL(fileURLWithPath: "\(folder)/mask.u8")).map { $0 != 0 }
        let expected = try floats("\(folder)/measure.f32")
        let filter = DotFilter(scalesMM: c.scales)
        let ours = filter.measure(image, shape: c.shape, spacing: c.spacing, mask: mask)
        let top = expected.max() ?? 0
        #expect(top > 0)
        #expect(maxAbsoluteError(ours, expected) <= 1e-4 * top, "max abs error \(maxAbsoluteError(ours, expected)) of \(top)")
        // Off the mask nothing is measured.
        #expect(zip(ours, mask).allSatisfy { $1 || $0 == 0 })
        let found = DotFilter.maxima(ours, shape: c.shape, reach: c.reach)
        #expect(found.map(\.index) == c.maxima)
        #expect(maxAbsoluteError(found.map(\.value), c.maximaValues) <= 1e-4 * top)
        // The ball on the tube's wall is one of them, and the strongest inside the volume (the other, at
        // the tube's cut end on the volume's face, is where the mirrored edge closes the tube).
        let (h, w) = (c.shape[1], c.shape[2])
        let near = found.firstIndex { p in
            let v = [p.index / (h * w), p.index / w % h, p.index % w]
            return zip(v, c.ballVoxel).allSatisfy { abs($0 - $1) <= 1 }
        }
        #expect(near.map { $0 <= 1 } == true, "the ball's maximum ranks \(String(describing: near))")
    }

    /// A CT head cut by the bottom face, with an air pocket inside and a ball on a vessel: the interior, the
    /// vessel-bright scale and the strongest candidates as the analysis finds them with REGION=foreground.
    @Test func headInteriorAndCandidatesMatchTheAnalysis() throws {
        let (c, folder) = try load()
        let head = c.head
        let volume = try Volume(shape: (head.shape[0], head.shape[1], head.shape[2]), voxels: floats("\(folder)/head.f32"),
                                geometry: Geometry(origin: Vector3(-20, 5, 40), spacing: Vector3(head.spacing[2], head.spacing[1], head.spacing[0]),
                                                   columnDirection: Vector3(1, 0, 0), rowDirection: Vector3(0, 1, 0), sliceDirection: Vector3(0, 0, 1)))
        let expected = try Data(contentsOf: URL(fileURLWithPath: "\(folder)/head_region.u8")).map { $0 != 0 }
        let region = DotFilter.headInterior(volume, depthMM: head.depth)
        #expect(region.filter { $0 }.count == head.regionVoxels)
        let differing = zip(region, expected).filter { $0 != $1 }.count
        #expect(differing == 0, "\(differing) voxels differ from scipy's")
        let bright = DotFilter.vesselBright(volume, contrast: .ct, region: region)
        #expect(maxAbsoluteError(bright, try floats("\(folder)/head_bright.f32")) <= 1e-6)
        let found = DotFilter(scalesMM: c.scales).candidates(volume, contrast: .ct, count: 10, depthMM: head.depth)
        let (h, w) = (head.shape[1], head.shape[2])
        let points = head.maxima.map { volume.geometry.patient(i: Double($0 % w), j: Double($0 / w % h), k: Double($0 / (h * w))) }
        #expect(found.count == points.count)
        for (f, (p, v)) in zip(found, zip(points, head.maximaValues)) {
            #expect((f.point - p).length < 1e-9 && abs(f.value - v) <= 1e-4 * v, "\(f) against \(p), \(v)")
        }
        // The strongest is the ball on the vessel.
        let ball = volume.geometry.patient(i: Double(head.ballVoxel[2]), j: Double(head.ballVoxel[1]), k: Double(head.ballVoxel[0]))
        #expect(found.first.map { ($0.point - ball).length <= 2 } == true, "strongest at \(String(describing: found.first)), the ball at \(ball)")
    }

    /// A ball 2 mm across touching one 6 mm across, on 2 mm slices (an aneurysm at a junction): across the
    /// scales the large ball's response covers the small one, and no peak lies near it; read at each scale,
    /// the smallest scale's maximum on the small ball is a candidate too. Both readings as the oracle's.
    @Test func eachScalesMaximaFindASmallBallBesideALargeOne() throws {
        let (c, folder) = try load()
        let j = c.junction
        let image = try floats("\(folder)/junction.f32")
        let mask = image.map { $0 > 0.25 }
        func distanceToSmallMM(_ index: Int) -> Double {
            let voxel = [index / (j.shape[1] * j.shape[2]), index / j.shape[2] % j.shape[1], index % j.shape[2]]
            return (0..<3).map { Double(voxel[$0]) * j.spacing[$0] - j.smallCentreMM[$0] }.map { $0 * $0 }.reduce(0, +).squareRoot()
        }
        for (search, indices, values) in [(DotFilter.PeakSearch.acrossScales, j.acrossScales, j.acrossScalesValues), (.eachScale, j.eachScale, j.eachScaleValues)] {
            let found = DotFilter(scalesMM: c.scales, peakSearch: search).peaks(image, shape: j.shape, spacing: j.spacing, mask: mask, reach: j.reach, count: 10)
            #expect(found.map(\.index) == indices, "\(search)")
            let top = values.max() ?? 0
            try #require(top > 0 && found.count == values.count, "\(search)")
            #expect(maxAbsoluteError(found.map(\.value), values) <= 1e-4 * top, "\(search)")
            let nearest = found.map { distanceToSmallMM($0.index) }.min() ?? .infinity
            #expect(search == .eachScale ? nearest <= 1.5 : nearest > 3, "\(search): the nearest peak lies \(nearest) mm from the small ball")
        }
    }

    /// The filter sweeps only the box around the mask (widened by the largest kernel's radius), and the
    /// measured voxels get the numbers the whole volume gives, bit for bit, on the oracle's tube and ball:
    /// with the mask a block around the ball, whose box stays clear of every face, and with the oracle's mask
    /// cut on one axis only, its box then reaching faces, where the mirrored edge counts.
    @Test func measuringTheMasksBoxEqualsMeasuringEverything() throws {
        let (c, folder) = try load()
        let image = try floats("\(folder)/image.f32")
        let oracleMask = try Data(contentsOf: URL(fileURLWithPath: "\(folder)/mask.u8")).map { $0 != 0 }
        let (d, h, w) = (c.shape[0], c.shape[1], c.shape[2])
        let filter = DotFilter(scalesMM: c.scales)
        let margin = (0..<3).map { a in c.scales.map { DotFilter.kernelRadius(sigma: $0 / c.spacing[a]) }.max() ?? 0 }
        for block in [true, false] {
            // The block: the voxels beside the ball's centre, where the measure is not 0, so a box one voxel
            // too narrow changes numbers that count.
            let b = c.ballVoxel
            let mask = oracleMask.enumerated().map { v, m in
                let (k, j, i) = (v / (h * w), v / w % h, v % w)
                return block ? abs(k - b[0]) <= 1 && abs(j - b[1]) <= 1 && abs(i - b[2]) <= 1 : m && i >= 12
            }
            #expect(mask.filter { $0 }.count >= 27)
            let box = try #require(DotFilter.box(around: mask, shape: c.shape, margin: margin))
            let end = (0..<3).map { box.start[$0] + box.shape[$0] }
            if block {
                #expect(box.start.allSatisfy { $0 > 0 } && end[0] < d && end[1] < h && end[2] < w, "\(box) should be clear of every face")
            } else {
                #expect(box.shape[2] < w && (box.start.contains(0) || end[0] == d || end[1] == h), "\(box) should reach a face")
            }
            let cropped = filter.measure(image, shape: c.shape, spacing: c.spacing, mask: mask)
            let everywhere = filter.measureWholeVolume(image, shape: c.shape, spacing: c.spacing, mask: mask)
            #expect(cropped.contains { $0 > 0 })
            let identical = cropped == everywhere
            #expect(identical, "block \(block): largest difference \(maxAbsoluteError(cropped, everywhere))")
        }
        let nothing = filter.measure(image, shape: c.shape, spacing: c.spacing, mask: [Bool](repeating: false, count: image.count))
        #expect(nothing.count == image.count && nothing.allSatisfy { $0 == 0 })
    }

    /// Percentiles by selection equal numpy's definition on the sorted values (linear between the two
    /// nearest ranks), with many ties, one value, two, and none.
    @Test func percentilesBySelectionEqualTheSortedDefinition() {
        var generator = SystemRandomNumberGenerator()
        func sortedDefinition(_ values: [Float], _ q: Double) -> Double {
            let sorted = values.sorted(), last = Double(sorted.count - 1)
            let at = q / 100 * last, below = Int(at.rounded(.down)), above = min(below + 1, sorted.count - 1)
            return Double(sorted[below]) + (Double(sorted[above]) - Double(sorted[below])) * (at - Double(below))
        }
        let qs = [0, 1, 50, 99, 99.9, 100]
        for count in [1, 2, 3, 10, 1001, 40_000] {
            for ties in [false, true] {
                let values: [Float] = (0..<count).map { _ in
                    ties ? Float(Int.random(in: -3...3, using: &generator)) * 100 : Float.random(in: -1000...3000, using: &generator)
                }
                let ours = DotFilter.percentiles(values, qs)
                for (q, p) in zip(qs, ours) {
                    #expect(p == sortedDefinition(values, q), "\(count) values (ties: \(ties)), q \(q): \(p)")
                }
            }
        }
        #expect(DotFilter.percentiles([], [50]) == [0])
    }

    /// The exact distance transform against brute force, with anisotropic voxels and background only at one corner.
    @Test func distanceToBackgroundIsExact() {
        let shape = [5, 7, 6], spacing = [2.0, 0.5, 1.25]
        var mask = [Bool](repeating: true, count: 5 * 7 * 6)
        let background = [0, 37, 5 * 7 * 6 - 1, 100]
        for v in background { mask[v] = false }
        let ours = DotFilter.squaredDistanceToBackground(mask, shape: shape, spacing: spacing)
        func position(_ v: Int) -> [Double] { [Double(v / 42), Double(v / 6 % 7), Double(v % 6)] }
        for v in mask.indices {
            var brute = Double.infinity
            for b in background {
                var sum = 0.0
                for a in 0..<3 {
                    let d = (position(v)[a] - position(b)[a]) * spacing[a]
                    sum += d * d
                }
                brute = min(brute, sum)
            }
            #expect(abs(ours[v] - brute) < 1e-9, "voxel \(v): \(ours[v]) against \(brute)")
        }
    }

    /// DICOM says only CT or MR: T2 (dark vessels) is read from the echo time when there is one, else
    /// from the series description, or from the RSNA tables' modality names; CT is CT whatever it says.
    @Test func vesselContrastFromTheSeries() {
        #expect(DotFilter.VesselContrast(modality: "MR", seriesDescription: nil, echoTimeMS: 102) == .darkMR)
        #expect(DotFilter.VesselContrast(modality: "MR", seriesDescription: "AX T2 FSE", echoTimeMS: 3) == .brightMR)
        #expect(DotFilter.VesselContrast(modality: "MR", seriesDescription: "MRI T2", echoTimeMS: .nan) == .darkMR)
        #expect(DotFilter.VesselContrast(modality: "CT", seriesDescription: "T2", echoTimeMS: 100) == .ct)
        #expect(DotFilter.VesselContrast(modality: "MR", seriesDescription: "3D TOF MRA") == .brightMR)
        #expect(DotFilter.VesselContrast(modality: "CT") == .ct)
        #expect(DotFilter.VesselContrast(modality: "CTA") == .ct)
        #expect(DotFilter.VesselContrast(modality: "MR", seriesDescription: "MRI T2") == .darkMR)
        #expect(DotFilter.VesselContrast(modality: "MR", seriesDescription: "ax t2 tse") == .darkMR)
        #expect(DotFilter.VesselContrast(modality: "MRI T2") == .darkMR)
        #expect(DotFilter.VesselContrast(modality: "MR", seriesDescription: "MRI T1post") == .brightMR)
        #expect(DotFilter.VesselContrast(modality: "MR") == .brightMR)
        #expect(DotFilter.VesselContrast(modality: "MRA") == .brightMR)
    }

    @Test func eigenvaluesOfKnownMatrices() {
        // diag(−3, −1, 2), rotated: the extremes are −3 and 2 whatever the rotation.
        let (c, s) = (cos(0.7), sin(0.7))
        // R diag(−3, −1, 2) Rᵀ for the rotation by 0.7 rad about the first axis.
        let b = -1 * c * c + 2 * s * s, cc = -1 * s * s + 2 * c * c, f = (-1 - 2) * c * s
        let (low, high) = DotFilter.extremeEigenvalues(-3, b, cc, 0, 0, f)
        #expect(abs(low + 3) < 1e-9 && abs(high - 2) < 1e-9, "\(low) \(high)")
        let (l2, h2) = DotFilter.extremeEigenvalues(-2, -2, -2, 0, 0, 0)
        #expect(l2 == -2 && h2 == -2)
        // [[2, 1, 0], [1, 2, 0], [0, 0, -4]]: eigenvalues 1, 3, −4.
        let (l3, h3) = DotFilter.extremeEigenvalues(2, 2, -4, 1, 0, 0)
        #expect(abs(l3 + 4) < 1e-9 && abs(h3 - 3) < 1e-9, "\(l3) \(h3)")
    }
}
