import Foundation

/// A point or direction in patient space (DICOM LPS: x to the patient's Left,
/// y to Posterior, z to Superior), in millimetres.
public struct Vector3: Equatable, Sendable, Codable, CustomStringConvertible {
    public var x, y, z: Double
    public init(_ x: Double, _ y: Double, _ z: Double) { (self.x, self.y, self.z) = (x, y, z) }
    public static let zero = Vector3(0, 0, 0)

    public static func + (a: Vector3, b: Vector3) -> Vector3 { Vector3(a.x + b.x, a.y + b.y, a.z + b.z) }
    public static func - (a: Vector3, b: Vector3) -> Vector3 { Vector3(a.x - b.x, a.y - b.y, a.z - b.z) }
    public static func * (a: Vector3, s: Double) -> Vector3 { Vector3(a.x * s, a.y * s, a.z * s) }
    public static prefix func - (a: Vector3) -> Vector3 { Vector3(-a.x, -a.y, -a.z) }
    public func dot(_ b: Vector3) -> Double { x * b.x + y * b.y + z * b.z }
    public func cross(_ b: Vector3) -> Vector3 { Vector3(y * b.z - z * b.y, z * b.x - x * b.z, x * b.y - y * b.x) }
    public var length: Double { dot(self).squareRoot() }
    public var normalized: Vector3 { let l = length; return l > 0 ? self * (1 / l) : self }
    public var description: String { String(format: "(%.4g, %.4g, %.4g)", x, y, z) }
}

/// Where the voxels of a `Volume` sit in patient space.
///
/// Voxel index (i, j, k) — column i along x of the array, row j, slice k — maps to
/// `origin + i·spacing.x·columnDirection + j·spacing.y·rowDirection + k·spacing.z·sliceDirection`.
/// `columnDirection` is DICOM's first ImageOrientationPatient vector (the direction in which the
/// column index grows), `rowDirection` the second.
public struct Geometry: Equatable, Sendable, Codable {
    /// Patient position of voxel (0, 0, 0), in mm.
    public var origin: Vector3
    /// Voxel size along i, j, k in mm.
    public var spacing: Vector3
    /// Unit direction of increasing i (DICOM: along a row, first IOP vector).
    public var columnDirection: Vector3
    /// Unit direction of increasing j (DICOM: down a column, second IOP vector).
    public var rowDirection: Vector3
    /// Unit direction of increasing k (slice order); need not be the cross product (it may be flipped).
    public var sliceDirection: Vector3

    public init(origin: Vector3, spacing: Vector3, columnDirection: Vector3, rowDirection: Vector3, sliceDirection: Vector3) {
        self.origin = origin
        self.spacing = spacing
        self.columnDirection = columnDirection
        self.rowDirection = rowDirection
        self.sliceDirection = sliceDirection
    }

    /// Identity directions, unit spacing, origin at 0.
    public static let identity = Geometry(origin: .zero, spacing: Vector3(1, 1, 1), columnDirection: Vector3(1, 0, 0),
                                          rowDirection: Vector3(0, 1, 0), sliceDirection: Vector3(0, 0, 1))

    /// Patient coordinates (LPS, mm) of a continuous voxel index (i, j, k).
    public func patient(i: Double, j: Double, k: Double) -> Vector3 {
        origin + columnDirection * (i * spacing.x) + rowDirection * (j * spacing.y) + sliceDirection * (k * spacing.z)
    }

    /// The continuous voxel index (i, j, k) of a patient point.
    public func voxel(_ p: Vector3) -> Vector3 {
        // Solve origin + M·(i·sx, j·sy, k·sz) = p with M = [col row slice] (3×3).
        let d = p - origin
        let m = [columnDirection, rowDirection, sliceDirection]
        let det = m[0].dot(m[1].cross(m[2]))
        guard abs(det) > 1e-12 else { return Vector3(.nan, .nan, .nan) }
        let a = d.dot(m[1].cross(m[2])) / det
        let b = m[0].dot(d.cross(m[2])) / det
        let c = m[0].dot(m[1].cross(d)) / det
        return Vector3(a / spacing.x, b / spacing.y, c / spacing.z)
    }

    /// The 4×4 voxel → LPS affine, row-major.
    public var affineLPS: [[Double]] {
        let c = columnDirection * spacing.x, r = rowDirection * spacing.y, s = sliceDirection * spacing.z
        return [[c.x, r.x, s.x, origin.x], [c.y, r.y, s.y, origin.y], [c.z, r.z, s.z, origin.z], [0, 0, 0, 1]]
    }

    /// The 4×4 voxel → RAS affine (NIfTI's convention), row-major.
    public var affineRAS: [[Double]] {
        var a = affineLPS
        for col in 0..<4 { a[0][col] = -a[0][col]; a[1][col] = -a[1][col] }
        return a
    }
}
