import DICOM
import VolumeCore
import Dispatch
import Foundation

/// Folder → HU volume timings for `willis bench dicom`.
public enum DICOMBenchmark {
    /// Seconds of each of `repeat` loads of `folder` with Willis's SeriesLoader (after one warm-up).
    public static func willis(_ folder: String, repeat count: Int) throws -> (seconds: [Double], voxels: Int) {
        var voxels = try SeriesLoader().load(folder).volume.count
        var seconds: [Double] = []
        for _ in 0..<count {
            let start = DispatchTime.now().uptimeNanoseconds
            voxels = try SeriesLoader().load(folder).volume.count
            seconds.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return (seconds, voxels)
    }

    /// The floor: reading every byte of the folder's files from the warm page cache, on all
    /// cores, into reused buffers — no parsing, no decoding, no output volume.
    public static func floor(_ folder: String, repeat count: Int) throws -> (seconds: [Double], bytes: Int) {
        let files = try SeriesLoader.files(at: folder)
        var total = 0
        var seconds: [Double] = []
        let workers = ProcessInfo.processInfo.activeProcessorCount
        for round in 0...max(count, 0) {
            let start = DispatchTime.now().uptimeNanoseconds
            var sums = [Int](repeating: 0, count: workers)
            sums.withUnsafeMutableBufferPointer { out in
                DispatchQueue.concurrentPerform(iterations: workers) { w in
                    let buffer = UnsafeMutableRawPointer.allocate(byteCount: 1 << 20, alignment: 64)
                    defer { buffer.deallocate() }
                    var n = 0
                    for i in stride(from: w, to: files.count, by: workers) {
                        let fd = open(files[i], O_RDONLY)
                        guard fd >= 0 else { continue }
                        while true {
                            let r = read(fd, buffer, 1 << 20)
                            if r <= 0 { break }
                            n += r
                        }
                        close(fd)
                    }
                    out[w] = n
                }
            }
            total = sums.reduce(0, +)
            if round > 0 { seconds.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9) }
        }
        return (seconds, total)
    }

    /// The floor for producing the volume: `floor` plus filling a fresh Float32 array of
    /// `voxels` (the kernel zeroes new pages; writing them once is the least any loader does).
    public static func floorWithOutput(_ folder: String, voxels: Int, repeat count: Int) throws -> [Double] {
        var seconds: [Double] = []
        let workers = ProcessInfo.processInfo.activeProcessorCount
        for _ in 0..<count {
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try floor(folder, repeat: 0)
            let volume = [Float](unsafeUninitializedCapacity: voxels) { out, initialized in
                LargeAllocation.adviseHugePages(UnsafeMutableRawBufferPointer(out))
                let chunk = (voxels + workers - 1) / workers
                DispatchQueue.concurrentPerform(iterations: workers) { w in
                    let range = (w * chunk)..<min(voxels, (w + 1) * chunk)
                    if !range.isEmpty { UnsafeMutableBufferPointer(rebasing: out[range]).initialize(repeating: 0) }
                }
                initialized = voxels
            }
            withExtendedLifetime(volume) {}
            seconds.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return seconds
    }

    public static func median(_ v: [Double]) -> Double {
        let s = v.sorted()
        return s.isEmpty ? .nan : s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
}
