import Dataset
import Testing

@Suite struct VesselTerritoriesTests {
    /// Against a brute-force oracle on random sparse labels: every voxel within the radius of a
    /// labelled voxel takes the label of the nearest (the first in memory order on a tie), labelled
    /// voxels keep theirs, and voxels farther than the radius stay background. Includes solid blobs,
    /// whose interior voxels the widening skips.
    @Test(arguments: [(UInt64(1), 2.5), (2, 4.0), (3, 1.0)])
    func widenedLabelsAreTheNearestWithinTheRadius(seed: UInt64, radius: Double) {
        let shape = [9, 11, 13]
        let (h, w) = (shape[1], shape[2])
        var g = SplitMix64(seed: seed)
        var labels = [UInt8](repeating: 0, count: shape.reduce(1, *))
        for _ in 0..<6 { labels[Int(g.next() % UInt64(labels.count))] = UInt8(1 + g.next() % 13) }
        // A 3×3×3 blob of one label, so that interior voxels exist.
        for k in 3...5 { for j in 4...6 { for i in 5...7 { labels[(k * h + j) * w + i] = 9 } } }
        let widened = VesselTerritories.widened(labels, shape: shape, radius: radius)
        let labelled = labels.indices.filter { labels[$0] != 0 }
        func position(_ v: Int) -> (Int, Int, Int) { (v / (h * w), (v / w) % h, v % w) }
        for v in labels.indices {
            if labels[v] != 0 { #expect(widened[v] == labels[v]); continue }
            let (k, j, i) = position(v)
            var best = (d2: Int.max, label: UInt8(0))
            for u in labelled {
                let (kk, jj, ii) = position(u)
                let d2 = (k - kk) * (k - kk) + (j - jj) * (j - jj) + (i - ii) * (i - ii)
                if d2 < best.d2 { best = (d2, labels[u]) }
            }
            let expected = Double(best.d2) <= radius * radius ? best.label : 0
            #expect(widened[v] == expected, "voxel \(k), \(j), \(i)")
        }
        #expect(VesselTerritories.widened(labels, shape: shape, radius: 0) == labels)
    }
}
