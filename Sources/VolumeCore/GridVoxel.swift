/// Whether the grid voxel `voxel`, written (i, j, k) = (column, row, slice) as `Geometry` writes it, lies
/// inside a grid of `shape`, written (depth, height, width) as `Volume` writes its shape: voxel axis a runs
/// along shape axis 2 − a. Voxels that come from elsewhere (a heatmap's peak, the dot filter's point, a
/// vessel lookup) pass this one rule before they index a grid.
public func isVoxel(_ voxel: [Int], inside shape: [Int]) -> Bool {
    voxel.count == 3 && shape.count == 3 && (0..<3).allSatisfy { voxel[$0] >= 0 && voxel[$0] < shape[2 - $0] }
}
