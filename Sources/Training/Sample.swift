import Anatomy
import Dataset

/// One preprocessed training example: the network input [D, H, W] and its 14 labels.
public struct Sample: Sendable {
    public var id: String
    public var input: [Float]
    public var labels: [Bool]
    /// The detector's targets and vessel labels in the input's grid (improved mode), when known.
    public var targets: DetectionTargets?
    public var vessels: [UInt8]?
    /// Index into `Modality.allCases`, when known.
    public var modality: Int?
    /// Where this sample's first voxel lies in the prepared grid it was cut from (D, H, W), and that
    /// grid's shape (nil: the sample is the whole grid). A left-right flip mirrors the origin too, so
    /// that the coordinates a network is shown are those of the mirrored head.
    public var gridOrigin = [0, 0, 0]
    public var grid: [Int]?
    /// The input is sampled this many times finer than the grid along each axis
    /// (`Preparation.subdivision`): it holds subdivision³ values per grid voxel, laid out as a volume
    /// of the grid's shape times the subdivision. Targets and vessel labels are on the grid.
    public var inputSubdivision = 1

    public init(id: String, input: [Float], labels: [Bool], targets: DetectionTargets? = nil, vessels: [UInt8]? = nil, modality: Int? = nil) {
        precondition(labels.count == LocationLabel.allCases.count, "14 labels expected")
        self.id = id
        self.input = input
        self.labels = labels
        self.targets = targets
        self.vessels = vessels
        self.modality = modality
    }

    /// The patch of `patch` (D, H, W) at `origin` of this sample's grid of `shape`: input and vessel labels
    /// cut out, targets shifted, and the 14 labels those of the localizer points inside the patch, so a
    /// patch without the aneurysm is a negative. (A positive series whose points could not be placed
    /// keeps its series labels.)
    public func cropped(origin: [Int], patch: [Int], shape: [Int], marginVoxels: Double) -> Sample {
        func cut<T>(_ values: [T], scale n: Int = 1) -> [T] {
            let (h, w) = (shape[1] * n, shape[2] * n)
            let (o, p) = (origin.map { $0 * n }, patch.map { $0 * n })
            var out: [T] = []
            out.reserveCapacity(p[0] * p[1] * p[2])
            for k in o[0]..<(o[0] + p[0]) {
                for j in o[1]..<(o[1] + p[1]) {
                    let row = (k * h + j) * w
                    out.append(contentsOf: values[(row + o[2])..<(row + o[2] + p[2])])
                }
            }
            return out
        }
        var labels = self.labels
        var targets = self.targets
        if let t = self.targets {
            let local = t.cropped(origin: origin, shape: patch, margin: marginVoxels)
            targets = local
            if t.unplaced.isEmpty || !t.points.isEmpty {
                labels = [Bool](repeating: false, count: LocationLabel.allCases.count)
                for p in local.points where DetectionTargets.contains(p, shape: patch) {
                    labels[p.location.rawValue] = true
                    labels[LocationLabel.aneurysmPresent.rawValue] = true
                }
            }
        }
        var patchSample = Sample(id: id, input: cut(input, scale: inputSubdivision), labels: labels, targets: targets,
                                 vessels: vessels.map { cut($0) }, modality: modality)
        patchSample.inputSubdivision = inputSubdivision
        patchSample.gridOrigin = zip(gridOrigin, origin).map(+)
        patchSample.grid = grid ?? shape
        return patchSample
    }

    /// The sample mirrored left-right: the volume flipped along its width (the patient's x axis in the
    /// canonical LPS+ layout) and every Left/Right location label swapped with its twin.
    public func flippedLeftRight(shape: [Int]) -> Sample {
        let (d, h, w) = (shape[0], shape[1], shape[2])
        let n = inputSubdivision
        var out = [Float](repeating: 0, count: input.count)
        let (fh, fw) = (h * n, w * n)
        for k in 0..<(d * n) { for j in 0..<fh {
            let row = (k * fh + j) * fw
            for i in 0..<fw { out[row + i] = input[row + fw - 1 - i] }
        } }
        var swapped = labels
        for l in LocationLabel.allCases { swapped[l.mirrored.rawValue] = labels[l.rawValue] }
        // Vessel labels are 1 + location: mirror the voxels and swap the sides as for the outputs.
        let mirroredVessels = vessels.map { v -> [UInt8] in
            var m = [UInt8](repeating: 0, count: v.count)
            for k in 0..<d { for j in 0..<h {
                let row = (k * h + j) * w
                for i in 0..<w {
                    let value = v[row + w - 1 - i]
                    m[row + i] = value >= 1 && value <= 13 ? UInt8(LocationLabel.locations[Int(value) - 1].mirrored.rawValue + 1) : value
                }
            } }
            return m
        }
        var mirrored = Sample(id: id, input: out, labels: swapped, targets: targets?.flippedLeftRight(width: w), vessels: mirroredVessels,
                              modality: modality)
        mirrored.grid = grid
        mirrored.inputSubdivision = n
        mirrored.gridOrigin = gridOrigin
        if let grid { mirrored.gridOrigin[2] = grid[2] - w - gridOrigin[2] }
        return mirrored
    }
}
