import VolumeCore

extension Series {
    /// The patient position (LPS, mm) of an RSNA localizer point: the slice named by
    /// `sopInstanceUID` (and `frame`, 0-based, for multi-frame objects), column `x`, row `y`.
    /// Returns nil when the slice is not part of this volume.
    public func patientPoint(sopInstanceUID: String, x: Double, y: Double, frame: Int = 0) -> Vector3? {
        let matches = slices.enumerated().filter { $0.element.sopInstanceUID == sopInstanceUID }
        guard let k = (matches.first { $0.element.frame == frame } ?? (matches.count == 1 ? matches.first : nil))?.offset else {
            return nil
        }
        return volume.geometry.patient(i: x, j: y, k: Double(k))
    }

    /// The continuous voxel index (i, j, k) of a localizer point in `target`'s geometry
    /// (for instance the canonical volume).
    public func voxel(sopInstanceUID: String, x: Double, y: Double, frame: Int = 0, in target: Geometry) -> Vector3? {
        patientPoint(sopInstanceUID: sopInstanceUID, x: x, y: y, frame: frame).map { target.voxel($0) }
    }
}
