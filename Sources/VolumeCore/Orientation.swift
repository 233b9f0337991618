/// Reorientation to one canonical axis order and direction.
///
/// The canonical layout is LPS+: index i grows towards the patient's Left, j towards
/// Posterior, k towards Superior (an axial stack seen from the feet, as DICOM's
/// patient axes). Axes are only permuted and flipped, never resampled, so voxel
/// values are unchanged and the patient position of every voxel is kept.
public struct Reorientation: Equatable, Sendable {
    /// For output axis a (0 = i, 1 = j, 2 = k): which input axis feeds it.
    public let source: [Int]
    /// For output axis a: whether the input axis is read backwards.
    public let flipped: [Bool]

    public static let identity = Reorientation(source: [0, 1, 2], flipped: [false, false, false])

    /// The permutation and flips that bring `geometry` closest to LPS+.
    public init(toCanonical geometry: Geometry) {
        let axes = [geometry.columnDirection, geometry.rowDirection, geometry.sliceDirection]
        func component(_ v: Vector3, _ a: Int) -> Double { a == 0 ? v.x : a == 1 ? v.y : v.z }
        // Pick, for each patient axis, the input axis most aligned with it (best total alignment first).
        var best: (score: Double, perm: [Int]) = (-1, [0, 1, 2])
        for perm in [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]] {
            let score = (0..<3).reduce(0.0) { $0 + abs(component(axes[perm[$1]], $1)) }
            if score > best.score + 1e-9 { best = (score, perm) }
        }
        source = best.perm
        flipped = (0..<3).map { component(axes[best.perm[$0]], $0) < 0 }
    }

    init(source: [Int], flipped: [Bool]) {
        self.source = source
        self.flipped = flipped
    }
}

extension Volume {
    /// This volume with axes permuted and flipped by `r`; every voxel keeps its patient position.
    public func reoriented(_ r: Reorientation) throws -> Volume {
        if r == .identity { return self }
        let inSize = [shape.width, shape.height, shape.depth]  // along i, j, k
        let outSize = r.source.map { inSize[$0] }
        let g = geometry
        let inDirs = [g.columnDirection, g.rowDirection, g.sliceDirection]
        let inSpacing = [g.spacing.x, g.spacing.y, g.spacing.z]
        var dirs: [Vector3] = [], spacing: [Double] = []
        // The new origin is the input voxel that lands at output (0, 0, 0).
        var originIndex = [0.0, 0.0, 0.0]
        for a in 0..<3 {
            let s = r.source[a]
            dirs.append(r.flipped[a] ? -inDirs[s] : inDirs[s])
            spacing.append(inSpacing[s])
            if r.flipped[a] { originIndex[s] = Double(inSize[s] - 1) }
        }
        let origin = g.patient(i: originIndex[0], j: originIndex[1], k: originIndex[2])
        let newGeometry = Geometry(origin: origin, spacing: Vector3(spacing[0], spacing[1], spacing[2]),
                                   columnDirection: dirs[0], rowDirection: dirs[1], sliceDirection: dirs[2])
        // Input strides along i, j, k, then per output axis with flips.
        let inStride = [1, shape.width, shape.width * shape.height]
        var stride = [0, 0, 0], start = 0
        for a in 0..<3 {
            let s = r.source[a]
            stride[a] = r.flipped[a] ? -inStride[s] : inStride[s]
            if r.flipped[a] { start += (inSize[s] - 1) * inStride[s] }
        }
        var out = [Float](repeating: 0, count: count)
        voxels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                var n = 0
                for k in 0..<outSize[2] {
                    for j in 0..<outSize[1] {
                        var p = start + k * stride[2] + j * stride[1]
                        for _ in 0..<outSize[0] {
                            dst[n] = src[p]
                            p += stride[0]
                            n += 1
                        }
                    }
                }
            }
        }
        return try Volume(shape: (outSize[2], outSize[1], outSize[0]), voxels: out, geometry: newGeometry)
    }

    /// This volume in the canonical LPS+ layout.
    public func canonical() throws -> Volume { try reoriented(Reorientation(toCanonical: geometry)) }
}
