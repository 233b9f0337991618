import Anatomy
import Foundation
import Inference
import Preprocessing
import TestSupport
import Testing

@Suite struct LocationPriorTests {
    struct Oracle: Decodable {
        struct Component: Decodable { var count: Int; var weight: Double; var mean: [Double]; var covariance: [Double] }
        struct Peak: Decodable { var voxel: [Int]; var probability: Double }
        var points: [[Double]]; var locations: [Int]; var components: [Component]
        var queries: [[Double]]; var posteriors: [[Double]]
        var shape: [Int]; var spacing: Double; var peaks: [Peak]; var readouts: [String: [Double]]
    }

    func oracle() throws -> Oracle {
        try JSONDecoder().decode(Oracle.self, from: Data(contentsOf: URL(fileURLWithPath: fixture("location_prior.json", generator: "location_prior.py"))))
    }

    func fitted(_ o: Oracle) throws -> LocationPrior {
        let points = try zip(o.points, o.locations).map { p, l in (position: p, location: try #require(LocationLabel(rawValue: l))) }
        return try LocationPrior.fit(points)
    }

    /// The shrunk Gaussians equal numpy's, including a location with one point and one with none (which
    /// sits at the mean of all points); the posterior equals scipy's densities, normalised, also for a
    /// point hundreds of millimetres from every location.
    @Test func fitAndPosteriorMatchNumpyAndScipy() throws {
        let o = try oracle()
        let prior = try fitted(o)
        #expect(prior.components.map(\.location) == LocationLabel.locations)
        for (c, e) in zip(prior.components, o.components) {
            #expect(c.count == e.count && abs(c.weight - e.weight) < 1e-12, "\(c.location)")
            #expect(zip(c.mean, e.mean).allSatisfy { abs($0 - $1) < 1e-9 }, "\(c.location): \(c.mean) vs \(e.mean)")
            #expect(zip(c.covariance, e.covariance).allSatisfy { abs($0 - $1) < 1e-9 }, "\(c.location)")
        }
        #expect(prior.components[7].count == 1 && prior.components[11].count == 0)
        for (q, expected) in zip(o.queries, o.posteriors) {
            let p = prior.posterior(at: q)
            #expect(abs(p.reduce(0, +) - 1) < 1e-12)
            #expect(zip(p, expected).allSatisfy { abs($0 - $1) < 1e-9 }, "at \(q): \(p) vs \(expected)")
        }
        // Stored in weights as JSON and read back unchanged.
        #expect(try LocationPrior.from(json: prior.json) == prior)
    }

    /// The readout of a heatmap's peaks equals the noisy-or oracle for 1, 3 and all peaks (the last one
    /// given for 8 but only 4 exist), with positions in the crop's frame on a 10×12×14 grid at 1.5 mm.
    @Test func candidateReadoutMatchesTheNoisyOrOracle() throws {
        let o = try oracle()
        let prior = try fitted(o)
        let grid = CropGrid(shape: o.shape, spacing: o.spacing)
        let peaks = o.peaks.map { HeatmapPeak(voxel: $0.voxel, probability: $0.probability) }
        for (count, expected) in o.readouts {
            let p = CandidateReadout(prior: prior, count: try #require(Int(count))).probabilities(peaks, grid: grid)
            #expect(p.count == 14)
            #expect(zip(p, expected).allSatisfy { abs($0 - $1) < 1e-9 }, "\(count) peaks: \(p) vs \(expected)")
        }
        #expect(CandidateReadout(prior: prior).probabilities([], grid: grid) == [Double](repeating: 0, count: 14))
    }

    /// A candidate with a NaN probability adds nothing, and one whose location head gave NaN (or a list
    /// that is not 13 long) is named by the prior: the readout of all peaks still equals the oracle's,
    /// finite in every column.
    @Test func candidatesThatAreNotFiniteDoNotSpoilTheReadout() throws {
        let o = try oracle()
        let prior = try fitted(o)
        let grid = CropGrid(shape: o.shape, spacing: o.spacing)
        let expected = try #require(o.readouts["8"])
        var peaks = o.peaks.map { HeatmapPeak(voxel: $0.voxel, probability: $0.probability) }
        peaks[0].locations = [.nan] + [Double](repeating: 1.0 / 12, count: 12)
        peaks[1].locations = [1]
        peaks.insert(HeatmapPeak(voxel: [1, 1, 1], probability: .nan), at: 2)
        let p = CandidateReadout(prior: prior, count: 8).probabilities(peaks, grid: grid)
        #expect(p.count == 14 && p.allSatisfy(\.isFinite), "\(p)")
        #expect(zip(p, expected).allSatisfy { abs($0 - $1) < 1e-9 }, "\(p) vs \(expected)")
    }

    /// Peaks are the local maxima at or above the threshold, strongest first: a plateau gives one peak
    /// (its first voxel in memory order), a maximum below the threshold none, and `count` keeps the strongest.
    @Test func peaksAreTheHeatmapsLocalMaxima() throws {
        let shape = [8, 10, 12]
        var heat = [Float](repeating: 0.01, count: shape.reduce(1, *))
        func at(_ i: Int, _ j: Int, _ k: Int) -> Int { (k * shape[1] + j) * shape[2] + i }
        for (centre, height) in [([2, 3, 1], Float(0.9)), ([9, 7, 6], 0.6), ([5, 1, 4], 0.3)] {
            for k in 0..<shape[0] { for j in 0..<shape[1] { for i in 0..<shape[2] {
                let r2 = Float((i - centre[0]) * (i - centre[0]) + (j - centre[1]) * (j - centre[1]) + (k - centre[2]) * (k - centre[2]))
                heat[at(i, j, k)] = max(heat[at(i, j, k)], height * exp(-r2 / 1.5))
            } } }
        }
        heat[at(10, 0, 0)] = 0.5
        heat[at(11, 0, 0)] = 0.5  // a plateau of two voxels
        heat[at(0, 9, 7)] = 0.04  // a maximum below the threshold
        let peaks = HeatmapPeak.find(heat, shape: shape, count: 10)
        #expect(peaks.map(\.voxel) == [[2, 3, 1], [9, 7, 6], [10, 0, 0], [5, 1, 4]], "\(peaks)")
        #expect(peaks.map(\.probability) == [0.9, 0.6, 0.5, 0.3].map { Double(Float($0)) })
        #expect(HeatmapPeak.find(heat, shape: shape, count: 2).map(\.voxel) == [[2, 3, 1], [9, 7, 6]])
        #expect(HeatmapPeak.find(heat, shape: shape, count: 10, threshold: 0.7).count == 1)
        #expect(HeatmapPeak.find(heat, shape: [8, 10, 11], count: 10).isEmpty, "a heatmap of another shape")
    }

    /// Points of a second source join the peaks unless they lie within the separation of a peak or of a
    /// point kept before them; each takes the heatmap's value at its voxel, and points off the grid are
    /// left out. Distances are in mm (here 2 mm voxels, 5 mm apart: 2.5 voxels).
    @Test func pointsOfAnotherSourceJoinThePeaksAwayFromThem() {
        let shape = [4, 5, 6]  // depth, height, width: i < 6, j < 5, k < 4
        var heat = [Float](repeating: 0, count: 4 * 5 * 6)
        for n in heat.indices { heat[n] = Float(n) / 1000 }
        let peaks = [HeatmapPeak(voxel: [0, 0, 0], probability: 0.9)]
        let points = [[1, 1, 1],   // √3 voxels = 3.5 mm from the peak: the same place
                      [5, 4, 3],   // far: kept, heatmap value at (3·5 + 4)·6 + 5 = 119
                      [5, 4, 1],   // 2 voxels = 4 mm from the point kept before: left out
                      [0, 4, 3],   // kept
                      [6, 0, 0],   // off the grid (i = 6)
                      [0, 0, -1],  // off the grid
                      [3, 0, 0]]   // 3 voxels = 6 mm from the peak: kept
        let out = HeatmapPeak.adding(points, source: .dotFilter, to: peaks, heatmap: heat, shape: shape, spacing: 2, separationMM: 5)
        #expect(out.map(\.voxel) == [[0, 0, 0], [5, 4, 3], [0, 4, 3], [3, 0, 0]])
        #expect(out.map(\.source) == [.heatmap, .dotFilter, .dotFilter, .dotFilter])
        #expect(out.dropFirst().map(\.probability) == [119, 114, 3].map { Double(Float($0) / 1000) })
        #expect(out[0] == peaks[0])
        #expect(HeatmapPeak.adding(points, source: .dotFilter, to: peaks, heatmap: heat, shape: shape, spacing: 2, separationMM: 0).count == 6,
                "with no separation only the points off the grid go")
    }

    /// What a prior cannot be fitted to, or read from, is refused with a reason.
    @Test func unusablePointsAndStoredPriorsAreRefused() throws {
        #expect(throws: LocationPrior.FitError.self) { try LocationPrior.fit([]) }
        #expect(throws: LocationPrior.FitError.self) { try LocationPrior.fit([(position: [1, .nan, 2], location: .leftMCA)]) }
        #expect(throws: LocationPrior.FitError.self) { try LocationPrior.fit([(position: [1, 2], location: .leftMCA)]) }
        let prior = try LocationPrior.fit([(position: [1, 2, 3], location: .leftMCA), (position: [-1, 2, 3], location: .rightMCA)])
        var short = prior
        short.components.removeLast()
        #expect(throws: (any Error).self) { try LocationPrior.from(json: short.json) }
        #expect(throws: (any Error).self) { try LocationPrior.from(json: "{\"components\": 3}") }
        // Two points, one each side: a point on the left is the left MCA's, and not-a-number positions
        // give the even prior rather than NaN.
        let left = prior.posterior(at: [1, 2, 3])
        #expect(left[LocationLabel.leftMCA.rawValue] > left[LocationLabel.rightMCA.rawValue])
        #expect(prior.posterior(at: [.nan, 0, 0]).allSatisfy { abs($0 - 1 / 13) < 1e-12 })
    }
}
