/// Vessel labels widened into territories: every unlabelled voxel within a radius of a labelled one
/// takes the label of the nearest. The detector's location pooling asks "which artery is this voxel
/// beside?", which an aneurysm's centre (outside the lumen, up to its radius away) and a network at
/// 1–2 mm can answer from a territory, not from a lumen one or two voxels wide (at 1.6 mm the
/// synthetic arteries fill 0.14 % of a crop, and a head trained on them stayed background nearly
/// everywhere).
public enum VesselTerritories {
    /// `labels` (0 = background) on a grid of `shape` (D, H, W) with isotropic voxels, widened by
    /// `radius` voxels (Euclidean). Labelled voxels keep their label; ties go to the first labelled
    /// voxel in memory order.
    public static func widened(_ labels: [UInt8], shape: [Int], radius: Double) -> [UInt8] {
        guard radius > 0, shape.count == 3, labels.count == shape.reduce(1, *) else { return labels }
        let (d, h, w) = (shape[0], shape[1], shape[2])
        let r = Int(radius.rounded(.down)), limit = radius * radius
        // The ball's offsets, nearest first, with their squared distances.
        var ball: [(dk: Int, dj: Int, di: Int, d2: Double)] = []
        for dk in -r...r { for dj in -r...r { for di in -r...r {
            let d2 = Double(dk * dk + dj * dj + di * di)
            if d2 > 0 && d2 <= limit { ball.append((dk, dj, di, d2)) }
        } } }
        var out = labels
        var best = labels.map { $0 != 0 ? 0 : Double.infinity }
        for (v, label) in labels.enumerated() where label != 0 {
            let (k, j, i) = (v / (h * w), (v / w) % h, v % w)
            // An interior voxel (all six neighbours labelled) is never the nearest to anything outside:
            // its neighbour along the largest component of the way out is strictly nearer.
            if k > 0, k < d - 1, j > 0, j < h - 1, i > 0, i < w - 1,
               labels[v - 1] != 0, labels[v + 1] != 0, labels[v - w] != 0, labels[v + w] != 0,
               labels[v - h * w] != 0, labels[v + h * w] != 0 { continue }
            for o in ball {
                let (kk, jj, ii) = (k + o.dk, j + o.dj, i + o.di)
                guard kk >= 0, kk < d, jj >= 0, jj < h, ii >= 0, ii < w else { continue }
                let u = (kk * h + jj) * w + ii
                if o.d2 < best[u] {
                    best[u] = o.d2
                    out[u] = label
                }
            }
        }
        return out
    }
}
