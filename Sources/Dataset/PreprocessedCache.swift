import AtomicFile
import DICOM
import Dispatch
import Foundation
import Preprocessing

/// Reference-mode inputs on disk: one raw little-endian Float32 file per series
/// (`<cache>/<settings>/<uid>.f32`, memory-mappable), under a folder named by the settings, so a
/// change of settings never reuses stale inputs. Building is parallel and resumable: files already
/// there are kept.
public struct PreprocessedCache: Sendable {
    public let folder: String
    public let shape: [Int]

    public init(root: String, shape: [Int]) {
        self.shape = shape
        self.folder = "\(root)/reference-\(shape.map(String.init).joined(separator: "x"))-v1"
    }

    public func path(_ uid: String) -> String { "\(folder)/\(uid).f32" }

    /// Preprocesses every series of `uids` found under `seriesRoot/<uid>` that is not cached yet.
    /// Returns the series that failed, with why; the others are cached.
    public func build(_ uids: [String], seriesRoot: String,
                      progress: @escaping @Sendable (Int, Int) -> Void = { _, _ in }) throws -> [(uid: String, error: String)] {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let todo = uids.filter { !FileManager.default.fileExists(atPath: path($0)) }
        var failures = [String?](repeating: nil, count: todo.count)
        let lock = NSLock()
        var done = 0
        let target = (depth: shape[0], height: shape[1], width: shape[2])
        failures.withUnsafeMutableBufferPointer { out in
            DispatchQueue.concurrentPerform(iterations: todo.count) { i in
                do {
                    let series = try SeriesLoader().load("\(seriesRoot)/\(todo[i])")
                    let input = ReferencePreprocessing.apply(series.volume, to: target)
                    try AtomicFile.write(input.withUnsafeBytes { Data($0) }, to: path(todo[i]))
                } catch {
                    out[i] = "\(error)"
                }
                lock.lock()
                done += 1
                let d = done
                lock.unlock()
                progress(d, todo.count)
            }
        }
        return zip(todo, failures).compactMap { uid, e in e.map { (uid, $0) } }
    }

    /// The cached input of `uid`.
    public func load(_ uid: String) throws -> [Float] {
        let file = path(uid)
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: file), options: .alwaysMapped)
        } catch {
            throw DatasetError(file: file, reason: "not in the cache: \(error.localizedDescription)")
        }
        let count = shape.reduce(1, *)
        guard data.count == count * 4 else { throw DatasetError(file: file, reason: "\(data.count) bytes, expected \(count * 4)") }
        return data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }
}
