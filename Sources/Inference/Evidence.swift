import AtomicFile
import Foundation
import NIfTI
import Preprocessing
import Reports
import VolumeCore

/// What `willis predict --evidence DIR` writes per series for a detector: the aneurysm heatmap as NIfTI
/// in patient geometry (it overlays the original series in 3D Slicer or ITK-SNAP), and the strongest
/// candidate points in patient coordinates.
public enum Evidence {
    public struct Candidate: Codable, Sendable, Equatable {
        /// Patient coordinates (LPS, mm) and the voxel of the prepared grid.
        public var lps: [Double]
        public var voxel: [Int]
        public var probability: Double
    }

    /// Local maxima of `heatmap` (26-neighbourhood), strongest first, at most `count`, above `threshold`.
    public static func candidates(_ heatmap: [Float], shape: [Int], grid: Geometry, count: Int = 5, threshold: Float = 0.05) -> [Candidate] {
        let (d, h, w) = (shape[0], shape[1], shape[2])
        var found: [Candidate] = []
        for k in 0..<d { for j in 0..<h { for i in 0..<w {
            let v = heatmap[(k * h + j) * w + i]
            guard v >= threshold else { continue }
            var peak = true
            search: for dk in -1...1 { for dj in -1...1 { for di in -1...1 where dk != 0 || dj != 0 || di != 0 {
                let (kk, jj, ii) = (k + dk, j + dj, i + di)
                guard kk >= 0, jj >= 0, ii >= 0, kk < d, jj < h, ii < w else { continue }
                let u = heatmap[(kk * h + jj) * w + ii]
                // Ties go to the first voxel in memory order, so a plateau yields one candidate.
                if u > v || (u == v && (kk * h + jj) * w + ii < (k * h + j) * w + i) { peak = false; break search }
            } } }
            if peak {
                let p = grid.patient(i: Double(i), j: Double(j), k: Double(k))
                found.append(Candidate(lps: [p.x, p.y, p.z], voxel: [i, j, k], probability: Double(v)))
            }
        } } }
        return Array(found.sorted { $0.probability > $1.probability }.prefix(count))
    }

    /// Writes `<uid>_heatmap.nii.gz`, `<uid>_candidates.json` and `<uid>_{axial,coronal,sagittal}.png` (MIPs
    /// of the prepared input with the heatmap in red) into `folder`.
    public static func write(heatmap: [Float], input: [Float], record: PreparationRecord, shape: [Int], uid: String, to folder: String) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let volume = try Volume(shape: (shape[0], shape[1], shape[2]), voxels: heatmap, geometry: record.output)
        try NIfTI.write(volume, to: "\(folder)/\(uid)_heatmap.nii.gz", dataType: .float32)
        let image = try Volume(shape: (shape[0], shape[1], shape[2]), voxels: input, geometry: record.output)
        for view in Projection.allCases {
            let o = view.overlay(image, heat: volume)
            try AtomicFile.write(try PNG.encode(width: o.width, height: o.height, channels: 3, pixels: o.rgb), to: "\(folder)/\(uid)_\(view.rawValue).png")
        }
        let found = candidates(heatmap, shape: shape, grid: record.output)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try encoder.encode(found), to: "\(folder)/\(uid)_candidates.json")
    }
}
