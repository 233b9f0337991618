import Foundation
import Inference
import NIfTI
import Reports
import VolumeCore

/// Axial slices of the prepared input the network saw, with the aneurysm heatmap in red where the
/// results hold one, as PNG. The last few series' volumes stay in memory, since a person scrolling
/// asks for many slices of one series in a row.
public final class SliceImages: @unchecked Sendable {
    struct Loaded {
        var input: Volume
        var heat: Volume?
    }
    let results: ResultsFolder
    let lock = NSLock()
    var cache: [(key: String, loaded: Loaded)] = []
    let capacity = 4

    public init(results: ResultsFolder) { self.results = results }

    /// Slices in the series' prepared input, or nil when it has none.
    public func depth(_ key: String) -> Int? { try? load(key)?.input.shape.depth }

    /// Slice `k` (0 is the first of the prepared grid) as PNG, or nil when the series or slice is not there.
    public func png(_ key: String, slice k: Int) throws -> Data? {
        guard let loaded = try load(key), k >= 0, k < loaded.input.shape.depth else { return nil }
        let (h, w) = (loaded.input.rows, loaded.input.columns)
        var rgb = [UInt8](repeating: 0, count: h * w * 3)
        for j in 0..<h {
            for i in 0..<w {
                let g = Double(max(0, min(255, loaded.input[k, j, i])))
                let a = loaded.heat.map { Double(max(0, min(1, $0[k, j, i]))) } ?? 0
                let base = g * (1 - a), n = 3 * (j * w + i)
                rgb[n] = UInt8(min(255, (base + 255 * a).rounded()))
                rgb[n + 1] = UInt8(base.rounded())
                rgb[n + 2] = UInt8(base.rounded())
            }
        }
        return try PNG.encode(width: w, height: h, channels: 3, pixels: rgb)
    }

    func load(_ key: String) throws -> Loaded? {
        guard ResultsFolder.isValidKey(key) else { return nil }
        lock.lock()
        if let hit = cache.firstIndex(where: { $0.key == key }) {
            let entry = cache.remove(at: hit)
            cache.append(entry)
            lock.unlock()
            return entry.loaded
        }
        lock.unlock()
        let folder = results.folder(for: key)
        let inputPath = "\(folder)/\(Evidence.inputFile)", heatPath = "\(folder)/\(Evidence.heatmapFile)"
        guard FileManager.default.fileExists(atPath: inputPath) else { return nil }
        let input = try NIfTI.read(inputPath, maxBytes: 512 << 20).volume
        var heat: Volume?
        if FileManager.default.fileExists(atPath: heatPath) {
            let h = try NIfTI.read(heatPath, maxBytes: 512 << 20).volume
            if h.shape == input.shape { heat = h }
        }
        let loaded = Loaded(input: input, heat: heat)
        lock.lock()
        cache.removeAll { $0.key == key }
        cache.append((key, loaded))
        if cache.count > capacity { cache.removeFirst(cache.count - capacity) }
        lock.unlock()
        return loaded
    }

    /// Forgets a series (its files were rewritten).
    public func forget(_ key: String) {
        lock.lock()
        cache.removeAll { $0.key == key }
        lock.unlock()
    }
}
