import Foundation

/// Splitting a prediction job across processes or machines, and joining the results.
public enum Sharding {
    /// Shard `index` of `count`: the series folders, sorted by name, taken round-robin (every `count`-th
    /// from `index`), so that every folder lands in exactly one shard whatever the order they were listed in.
    public static func select(_ folders: [String], shard index: Int, of count: Int) -> [String] {
        precondition(count > 0 && index >= 0 && index < count, "shard \(index) of \(count)")
        return folders.sorted().enumerated().filter { $0.offset % count == index }.map(\.element)
    }

    /// "i/N" → (i, N), with 0 ≤ i < N.
    /// Where shard `index` writes when every process was given the same path (a launcher passes the
    /// same arguments to all): `{rank}` in `path` becomes the index, else `.rank<i>` goes before the extension.
    public static func outputPath(_ path: String, shard index: Int) -> String {
        if path.contains("{rank}") { return path.replacingOccurrences(of: "{rank}", with: String(index)) }
        let ns = path as NSString
        let ext = ns.pathExtension
        return ext.isEmpty ? "\(path).rank\(index)" : "\(ns.deletingPathExtension).rank\(index).\(ext)"
    }

    public static func parse(_ text: String) -> (index: Int, count: Int)? {
        let parts = text.split(separator: "/").map { Int($0) }
        guard parts.count == 2, let i = parts[0], let n = parts[1], n > 0, i >= 0, i < n else { return nil }
        return (i, n)
    }

    /// The shard from the launch environment (`RANK` and `WORLD_SIZE`, as torchrun, Slurm wrappers and
    /// Kubernetes indexed jobs set them), if both are there and consistent.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> (index: Int, count: Int)? {
        guard let r = environment["RANK"].flatMap({ Int($0) }), let n = environment["WORLD_SIZE"].flatMap({ Int($0) }),
              n > 0, r >= 0, r < n else { return nil }
        return (r, n)
    }

    public struct Merged {
        public var rows: [(uid: String, probabilities: [Double])]
        /// Series that appear in more than one shard (the first shard's row is kept).
        public var duplicates: [String]
    }

    /// The rows of several submission files, sorted by SeriesInstanceUID.
    public static func merge(_ paths: [String]) throws -> Merged {
        var rows: [String: [Double]] = [:]
        var duplicates: [String] = []
        for path in paths {
            for (uid, p) in try Submission.read(path).sorted(by: { $0.key < $1.key }) {
                if rows[uid] != nil { duplicates.append(uid) } else { rows[uid] = p }
            }
        }
        return Merged(rows: rows.keys.sorted().map { ($0, rows[$0] ?? []) }, duplicates: duplicates.sorted())
    }
}
