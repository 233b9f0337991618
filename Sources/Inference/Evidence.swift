import Anatomy
import AtomicFile
import Foundation
import NIfTI
import Preprocessing
import Reports
import VolumeCore

/// What a series' prediction can be checked against, written into its folder of a `ResultsFolder`:
/// the prepared input (for scrolling through the slices the network saw), MIPs of it, and for a
/// detector the aneurysm heatmap as NIfTI in patient geometry (it overlays the original series in
/// 3D Slicer or ITK-SNAP), the MIPs with the heatmap in red, and the strongest candidate points. A
/// second stage with no detector has no heatmap; its candidates' probabilities, each painted as a ball,
/// take the heatmap's place (`candidateMap`).
public enum Evidence {
    public struct Candidate: Codable, Sendable, Equatable {
        /// Patient coordinates (LPS, mm) and the voxel of the prepared grid.
        public var lps: [Double]
        public var voxel: [Int]
        public var probability: Double
        /// With a candidate classifier: its probability, and the heatmap's value (`probability` is then
        /// the two combined).
        public var classifier: Double?
        public var heatmap: Double?
        /// What found the point when it is not the heatmap ("dot-filter"); absent for heatmap peaks.
        public var source: String?
        /// The artery the candidate classifier's location head finds most probable under the point (its
        /// column name), and that probability; absent without a location head.
        public var location: String?
        public var locationProbability: Double?
        /// The location head's probability of every artery under the point (column name → probability),
        /// which the readout weighs the candidate's probability by, so a submission row can be recomputed from
        /// its series' candidates; absent without a location head.
        public var locations: [String: Double]?

        public init(lps: [Double], voxel: [Int], probability: Double, classifier: Double? = nil, heatmap: Double? = nil, source: String? = nil,
                    location: String? = nil, locationProbability: Double? = nil, locations: [String: Double]? = nil) {
            self.lps = lps
            self.voxel = voxel
            self.probability = probability
            self.classifier = classifier
            self.heatmap = heatmap
            self.source = source
            self.location = location
            self.locationProbability = locationProbability
            self.locations = locations
        }
    }

    /// File names inside a series' folder.
    public static let inputFile = "input.nii.gz"
    public static let heatmapFile = "heatmap.nii.gz"
    public static let candidateMapFile = "candidate-map.nii.gz"
    public static let candidatesFile = "candidates.json"
    public static func projectionFile(_ view: Projection) -> String { "\(view.rawValue).png" }

    /// The strongest local maxima of `heatmap` (see `HeatmapPeak.find`) with their place in the patient.
    public static func candidates(_ heatmap: [Float], shape: [Int], grid: Geometry, count: Int = 5, threshold: Float = 0.05) -> [Candidate] {
        candidates(HeatmapPeak.find(heatmap, shape: shape, count: count, threshold: threshold), grid: grid)
    }

    /// `peaks` with their place in the patient.
    public static func candidates(_ peaks: [HeatmapPeak], grid: Geometry) -> [Candidate] {
        peaks.map { peak in
            let p = grid.patient(i: Double(peak.voxel[0]), j: Double(peak.voxel[1]), k: Double(peak.voxel[2]))
            // Not finite (a cube with NaN in it) is left unsaid: JSON has no NaN, and the file must still be written.
            let named = peak.locations.flatMap { $0.count == LocationLabel.locations.count && $0.allSatisfy(\.isFinite) ? $0 : nil }
            let best = named.flatMap { named in named.indices.max { named[$0] < named[$1] }.map { (named[$0], $0) } }
            let all = named.map { Dictionary(uniqueKeysWithValues: zip(LocationLabel.locations.map(\.columnName), $0)) }
            return Candidate(lps: [p.x, p.y, p.z], voxel: peak.voxel, probability: peak.probability, classifier: peak.classifier,
                             heatmap: peak.heatmap, source: peak.source == .heatmap ? nil : peak.source.rawValue,
                             location: best.flatMap { LocationLabel(rawValue: $0.1)?.columnName }, locationProbability: best?.0,
                             locations: all)
        }
    }

    /// How far around its voxel a candidate is painted in the candidate map: about an aneurysm's radius,
    /// so a strong candidate shows as a red dot the size of what it may be.
    public static let candidateRadiusMM = 3.0

    /// The candidates' probabilities on the prepared grid (values `[k][j][i]`, `shape` D × H × W): every voxel
    /// within `radiusMM` of a candidate's voxel (by the grid's spacing along each axis) holds the largest
    /// probability of the candidates that reach it, every other voxel 0. For a stage with no heatmap this is
    /// what opens over the series in a viewer: where the readout looked, and how strongly it believed.
    public static func candidateMap(_ peaks: [HeatmapPeak], shape: [Int], grid: Geometry, radiusMM: Double = candidateRadiusMM) -> [Float] {
        let (d, h, w) = (shape[0], shape[1], shape[2])
        var map = [Float](repeating: 0, count: d * h * w)
        let s = [grid.spacing.x, grid.spacing.y, grid.spacing.z]
        let reach = (0..<3).map { Int((radiusMM / s[$0]).rounded(.down)) }
        for peak in peaks where isVoxel(peak.voxel, inside: shape) && peak.probability.isFinite {
            let c = peak.voxel, p = Float(max(0, min(1, peak.probability)))
            for k in max(0, c[2] - reach[2])...min(d - 1, c[2] + reach[2]) {
                let dk = Double(k - c[2]) * s[2]
                for j in max(0, c[1] - reach[1])...min(h - 1, c[1] + reach[1]) {
                    let dj = Double(j - c[1]) * s[1]
                    for i in max(0, c[0] - reach[0])...min(w - 1, c[0] + reach[0]) {
                        let di = Double(i - c[0]) * s[0]
                        guard di * di + dj * dj + dk * dk <= radiusMM * radiusMM else { continue }
                        let n = (k * h + j) * w + i
                        map[n] = max(map[n], p)
                    }
                }
            }
        }
        return map
    }

    static func sliceWindow(_ values: [Float]) -> (low: Float, high: Float) {
        let finite = values.filter(\.isFinite)
        guard !finite.isEmpty else { return (0, 1) }
        let step = max(1, finite.count / 200_000)
        let sample = stride(from: 0, to: finite.count, by: step).map { finite[$0] }.sorted()
        return (sample[Int(Double(sample.count - 1) * 0.01)], sample[Int(Double(sample.count - 1) * 0.998)])
    }

    /// Writes into `folder`: `input.nii.gz` (the prepared input windowed to 8 bits, on `grid`) and the
    /// axial, coronal and sagittal MIPs; with a heatmap also `heatmap.nii.gz` and the heatmap in red over
    /// the MIPs; with `peaks` and no heatmap, `candidate-map.nii.gz` (`candidateMap` of all the peaks) in
    /// its place; with a heatmap or `peaks`, `candidates.json`. The candidates are `peaks` (those the
    /// readout used) when given, else the heatmap's strongest local maxima; `candidateCount` of them.
    /// Returns the names written and the candidates.
    @discardableResult
    public static func write(input: [Float], heatmap: [Float]?, peaks: [HeatmapPeak]? = nil, grid: Geometry, shape: [Int],
                             candidateCount: Int = 5, to folder: String) throws
        -> (files: [String], candidates: [Candidate]?) {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let dims = (shape[0], shape[1], shape[2])
        let image = try Volume(shape: dims, voxels: input, geometry: grid)
        var files: [String] = []
        // Slices show tissue as well as vessels: a wider window than the MIPs' (1st to 99.8th percentile).
        let (low, high) = sliceWindow(input)
        let scale = 255 / max(high - low, 1e-6)
        let bytes = try Volume(shape: dims, voxels: input.map { $0.isFinite ? max(0, min(255, (($0 - low) * scale).rounded())) : 0 }, geometry: grid)
        try NIfTI.write(bytes, to: "\(folder)/\(inputFile)", dataType: .uint8)
        files.append(inputFile)
        var found: [Candidate]?
        var heat: Volume?
        if let heatmap {
            let volume = try Volume(shape: dims, voxels: heatmap, geometry: grid)
            try NIfTI.write(volume, to: "\(folder)/\(heatmapFile)", dataType: .float32)
            files.append(heatmapFile)
            heat = volume
        } else if let peaks {
            let volume = try Volume(shape: dims, voxels: candidateMap(peaks, shape: shape, grid: grid), geometry: grid)
            try NIfTI.write(volume, to: "\(folder)/\(candidateMapFile)", dataType: .float32)
            files.append(candidateMapFile)
            heat = volume
        }
        // A second stage with no detector has candidates and no heatmap: they are listed all the same.
        if let c = peaks.map({ candidates(Array($0.prefix(candidateCount)), grid: grid) })
            ?? heatmap.map({ candidates($0, shape: shape, grid: grid, count: candidateCount) }) {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try AtomicFile.write(try encoder.encode(c), to: "\(folder)/\(candidatesFile)")
            files.append(candidatesFile)
            found = c
        }
        for view in Projection.allCases {
            let png: Data
            if let heat {
                let o = view.overlay(image, heat: heat)
                png = try PNG.encode(width: o.width, height: o.height, channels: 3, pixels: o.rgb)
            } else {
                let g = view.image(of: image)
                png = try PNG.encode(width: g.width, height: g.height, channels: 1, pixels: g.pixels)
            }
            try AtomicFile.write(png, to: "\(folder)/\(projectionFile(view))")
            files.append(projectionFile(view))
        }
        return (files, found)
    }
}
