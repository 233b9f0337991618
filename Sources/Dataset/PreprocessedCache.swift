import AtomicFile
import DICOM
import Dispatch
import Foundation
import Preprocessing

/// Network inputs on disk: one raw little-endian Float32 file per series (`<cache>/<settings>/<uid>.f32`,
/// memory-mappable), under a folder named by the preparation settings, so a change of settings never
/// reuses stale inputs. Improved mode also keeps `<uid>.json`, the record of the output grid in the
/// patient, `<uid>.targets.json` (the detector's aneurysm points in the grid) and, where a cowseg file
/// exists, `<uid>.vessels.u8` (its labels resampled onto the grid). Building is parallel and resumable:
/// files already there are kept.
public struct PreprocessedCache: Sendable {
    public let folder: String
    public let preparation: Preparation
    public var shape: [Int] { preparation.shape }

    public init(root: String, preparation: Preparation) {
        self.preparation = preparation
        self.folder = "\(root)/\(preparation.cacheKey)"
    }

    public func path(_ uid: String) -> String { "\(folder)/\(uid).f32" }
    public func recordPath(_ uid: String) -> String { "\(folder)/\(uid).json" }
    public func targetsPath(_ uid: String) -> String { "\(folder)/\(uid).targets.json" }
    public func vesselsPath(_ uid: String) -> String { "\(folder)/\(uid).vessels.u8" }

    /// Series of `items` not cached yet.
    public func missing(_ items: [(uid: String, modality: String)]) -> [(uid: String, modality: String)] {
        items.filter { !FileManager.default.fileExists(atPath: path($0.uid)) }
    }

    /// Preprocesses every series of `items` found under `seriesRoot/<uid>` that is not cached yet.
    /// Returns the series that failed, with why; the others are cached. `progress(done, total)` counts
    /// the series that needed work.
    public func build(_ items: [(uid: String, modality: String)], seriesRoot: String,
                      localizers: [String: [LocalizerPoint]] = [:], segmentationRoot: String? = nil,
                      progress: @escaping @Sendable (Int, Int) -> Void = { _, _ in }) throws -> [(uid: String, error: String)] {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let todo = missing(items)
        var failures = [String?](repeating: nil, count: todo.count)
        let lock = NSLock()
        var done = 0
        let preparation = self.preparation
        failures.withUnsafeMutableBufferPointer { out in
            DispatchQueue.concurrentPerform(iterations: todo.count) { i in
                do {
                    let series = try SeriesLoader().load("\(seriesRoot)/\(todo[i].uid)")
                    let (input, prepared) = preparation.prepare(series.volume, modality: todo[i].modality)
                    if var record = prepared {
                        record.vesselContrast = DotFilter.VesselContrast(series)
                        let uid = todo[i].uid
                        try AtomicFile.write(try JSONEncoder().encode(record), to: recordPath(uid))
                        let cowseg = segmentationRoot.map { "\($0)/\(uid)_cowseg.nii" }.flatMap { FileManager.default.fileExists(atPath: $0) ? $0 : nil }
                        let (targets, vessels) = DetectionTargets.make(series: series, points: localizers[uid] ?? [], segmentation: cowseg,
                                                                      record: record, shape: preparation.shape)
                        if let vessels { try AtomicFile.write(Data(vessels), to: vesselsPath(uid)) }
                        try AtomicFile.write(try JSONEncoder().encode(targets), to: targetsPath(uid))
                    }
                    // The data file last: its presence means the entry is complete.
                    try AtomicFile.write(input.withUnsafeBytes { Data($0) }, to: path(todo[i].uid))
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
        return zip(todo, failures).compactMap { item, e in e.map { (item.uid, $0) } }
    }

    /// The detector's targets of `uid` (improved mode), and its vessel labels when it has them.
    public func targets(_ uid: String) throws -> (targets: DetectionTargets, vessels: [UInt8]?) {
        let targets = try detectionTargets(uid)
        guard targets.hasVessels else { return (targets, nil) }
        let bytes = try Data(contentsOf: URL(fileURLWithPath: vesselsPath(uid)), options: .alwaysMapped)
        guard bytes.count == shape.reduce(1, *) else { throw DatasetError(file: vesselsPath(uid), reason: "\(bytes.count) bytes, expected \(shape.reduce(1, *))") }
        return (targets, [UInt8](bytes))
    }

    /// The detector's targets of `uid` alone (improved mode), without reading its vessel labels.
    public func detectionTargets(_ uid: String) throws -> DetectionTargets {
        let file = targetsPath(uid)
        do { return try JSONDecoder().decode(DetectionTargets.self, from: Data(contentsOf: URL(fileURLWithPath: file))) } catch {
            throw DatasetError(file: file, reason: "no detection targets (improved-mode cache only): \(error.localizedDescription)")
        }
    }

    /// How the vessels of `uid` show (`DotFilter.VesselContrast(series)`), as its record keeps it. A record
    /// from before the cache kept it (or one that cannot be read) is made good from the series under
    /// `seriesRoot`, a read of its files, and rewritten with it.
    public func vesselContrast(_ uid: String, seriesRoot: String) throws -> DotFilter.VesselContrast {
        let file = recordPath(uid)
        var record = FileManager.default.contents(atPath: file).flatMap { try? JSONDecoder().decode(PreparationRecord.self, from: $0) }
        if let known = record?.vesselContrast { return known }
        let contrast = DotFilter.VesselContrast(try SeriesLoader().load("\(seriesRoot)/\(uid)"))
        if record != nil {
            record?.vesselContrast = contrast
            try AtomicFile.write(try JSONEncoder().encode(record), to: file)
        }
        return contrast
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
        let count = preparation.inputCount
        guard data.count == count * 4 else { throw DatasetError(file: file, reason: "\(data.count) bytes, expected \(count * 4)") }
        return data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }
}
