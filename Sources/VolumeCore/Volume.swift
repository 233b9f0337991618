/// A 3D scalar image with its place in patient space.
///
/// Voxels are Float32 in z-y-x order: `voxels[(k * rows + j) * columns + i]` is column i, row j,
/// slice k, where i, j, k follow `geometry`. For CT the values are Hounsfield units.
public struct Volume: Sendable {
    /// (slices, rows, columns) = (depth, height, width).
    public let shape: (depth: Int, height: Int, width: Int)
    public var voxels: [Float]
    public var geometry: Geometry

    /// Fails if `voxels` does not fill `shape`.
    public init(shape: (depth: Int, height: Int, width: Int), voxels: [Float], geometry: Geometry) throws {
        guard shape.depth >= 0, shape.height >= 0, shape.width >= 0,
              shape.depth * shape.height * shape.width == voxels.count
        else { throw VolumeError.shapeMismatch(shape: [shape.depth, shape.height, shape.width], count: voxels.count) }
        self.shape = shape
        self.voxels = voxels
        self.geometry = geometry
    }

    public var count: Int { voxels.count }
    public var rows: Int { shape.height }
    public var columns: Int { shape.width }

    @inline(__always)
    public subscript(k: Int, j: Int, i: Int) -> Float {
        voxels[(k * shape.height + j) * shape.width + i]
    }
}

public enum VolumeError: Error, CustomStringConvertible, Equatable {
    case shapeMismatch(shape: [Int], count: Int)
    public var description: String {
        switch self {
        case let .shapeMismatch(shape, count): return "\(count) voxels do not fill shape \(shape)"
        }
    }
}
