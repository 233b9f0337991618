import Anatomy
import DICOM
import Foundation
import NIfTI
import Preprocessing
import VolumeCore

/// What the detector learns from for one series, in the prepared (improved-mode) grid: the aneurysm
/// centres from train_localizers.csv, and whether vessel labels from `<uid>_cowseg.nii` were resampled
/// onto the grid (stored beside them as one byte per voxel).
public struct DetectionTargets: Codable, Sendable, Equatable {
    public struct Point: Codable, Sendable, Equatable {
        /// Continuous voxel coordinates in the prepared grid (x = i along width, y = j, z = k).
        public var i, j, k: Double
        public var location: LocationLabel
        public init(i: Double, j: Double, k: Double, location: LocationLabel) {
            (self.i, self.j, self.k, self.location) = (i, j, k, location)
        }
    }

    public var points: [Point]
    public var hasVessels: Bool
    /// Localizer rows that could not be placed (slice not in the series, point outside the grid).
    public var unplaced: [String]

    public init(points: [Point] = [], hasVessels: Bool = false, unplaced: [String] = []) {
        self.points = points
        self.hasVessels = hasVessels
        self.unplaced = unplaced
    }

    /// Targets for `series`, prepared onto `record.output` with `shape` (depth, height, width).
    /// Returns the vessel labels too when `segmentation` (a cowseg file) is given and readable.
    public static func make(series: Series, points localizers: [LocalizerPoint], segmentation: String?,
                            record: PreparationRecord, shape: [Int]) -> (targets: DetectionTargets, vessels: [UInt8]?) {
        var points: [Point] = []
        var unplaced: [String] = []
        for p in localizers {
            guard let patient = series.patientPoint(sopInstanceUID: p.sopInstanceUID, x: p.x, y: p.y, frame: p.frame ?? 0) else {
                unplaced.append("\(p.location.columnName): slice \(p.sopInstanceUID) is not in the series")
                continue
            }
            let v = record.output.voxel(patient)
            guard v.x >= -0.5, v.y >= -0.5, v.z >= -0.5, v.x <= Double(shape[2]) - 0.5, v.y <= Double(shape[1]) - 0.5,
                  v.z <= Double(shape[0]) - 0.5 else {
                unplaced.append("\(p.location.columnName): outside the prepared crop")
                continue
            }
            points.append(Point(i: v.x, j: v.y, k: v.z, location: p.location))
        }
        var vessels: [UInt8]?
        if let segmentation, let image = try? NIfTI.read(segmentation) {
            vessels = resampleLabels(image.volume, onto: record.output, shape: shape)
        }
        return (DetectionTargets(points: points, hasVessels: vessels != nil, unplaced: unplaced), vessels)
    }

    /// Nearest-neighbour labels of `labels` at every voxel centre of `grid` (0 outside it).
    static func resampleLabels(_ labels: Volume, onto grid: Geometry, shape: [Int]) -> [UInt8] {
        let (d, h, w) = (shape[0], shape[1], shape[2])
        var out = [UInt8](repeating: 0, count: d * h * w)
        let (ld, lh, lw) = (labels.shape.depth, labels.shape.height, labels.shape.width)
        for k in 0..<d { for j in 0..<h { for i in 0..<w {
            let v = labels.geometry.voxel(grid.patient(i: Double(i), j: Double(j), k: Double(k)))
            let (x, y, z) = (Int(v.x.rounded()), Int(v.y.rounded()), Int(v.z.rounded()))
            guard x >= 0, y >= 0, z >= 0, x < lw, y < lh, z < ld else { continue }
            let value = labels[z, y, x]
            out[(k * h + j) * w + i] = value >= 0 && value <= 13 ? UInt8(value) : 0
        } } }
        return out
    }

    /// The heatmap target: at each voxel the largest Gaussian exp(−r² / 2σ²) over the points, with σ
    /// given in mm and turned into voxels with the grid's (isotropic) `spacing`.
    public func heatmap(shape: [Int], spacing: Double, sigmaMM: Double = 2) -> [Float] {
        let (d, h, w) = (shape[0], shape[1], shape[2])
        var out = [Float](repeating: 0, count: d * h * w)
        let sigma = max(sigmaMM / spacing, 0.5)
        let reach = Int((3 * sigma).rounded(.up))
        for p in points {
            func span(_ c: Double, _ n: Int) -> ClosedRange<Int>? {
                let lo = max(0, Int(c.rounded()) - reach), hi = min(n - 1, Int(c.rounded()) + reach)
                return lo <= hi ? lo...hi : nil
            }
            guard let ks = span(p.k, d), let js = span(p.j, h), let is_ = span(p.i, w) else { continue }
            for k in ks {
                for j in js {
                    for i in is_ {
                        let r2 = (Double(i) - p.i) * (Double(i) - p.i) + (Double(j) - p.j) * (Double(j) - p.j) + (Double(k) - p.k) * (Double(k) - p.k)
                        let g = Float(exp(-r2 / (2 * sigma * sigma)))
                        let index = (k * h + j) * w + i
                        if g > out[index] { out[index] = g }
                    }
                }
            }
        }
        return out
    }

    /// The targets of the patch of `shape` whose first voxel is `origin` (both D, H, W) of the grid:
    /// points shifted into it, those farther than `margin` voxels outside it dropped (nearer ones still
    /// reach into the patch with their Gaussian).
    public func cropped(origin: [Int], shape: [Int], margin: Double) -> DetectionTargets {
        let kept = points.compactMap { p -> Point? in
            let q = Point(i: p.i - Double(origin[2]), j: p.j - Double(origin[1]), k: p.k - Double(origin[0]), location: p.location)
            let inside = [q.k, q.j, q.i].enumerated().allSatisfy { $0.element >= -0.5 - margin && $0.element <= Double(shape[$0.offset]) - 0.5 + margin }
            return inside ? q : nil
        }
        return DetectionTargets(points: kept, hasVessels: hasVessels, unplaced: unplaced)
    }

    /// Whether `p` lies in a grid of `shape` (voxel centres −½ … n − ½).
    public static func contains(_ p: Point, shape: [Int]) -> Bool {
        p.k >= -0.5 && p.j >= -0.5 && p.i >= -0.5 && p.k <= Double(shape[0]) - 0.5 && p.j <= Double(shape[1]) - 0.5 && p.i <= Double(shape[2]) - 0.5
    }

    /// The targets mirrored left-right in a grid `width` voxels wide (x is the patient's left in the
    /// LPS grid): points move to w − 1 − i and change to their mirrored location.
    public func flippedLeftRight(width: Int) -> DetectionTargets {
        var t = self
        t.points = points.map { Point(i: Double(width - 1) - $0.i, j: $0.j, k: $0.k, location: $0.location.mirrored) }
        return t
    }
}
