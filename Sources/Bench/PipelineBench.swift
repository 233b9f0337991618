import DICOM
import Dispatch
import Foundation
import Inference
import Preprocessing
import VolumeCore

/// The stages of one series' way through Willis, timed for `willis bench pipeline`.
public enum PipelineBenchmark {
    nonisolated(unsafe) public static var checksum: Float = 0

    /// Seconds of each of `count` runs of `body`, after one untimed warm-up run.
    public static func timed(_ count: Int, _ body: () throws -> Void) rethrows -> [Double] {
        try body()
        var seconds: [Double] = []
        for _ in 0..<count {
            let start = DispatchTime.now().uptimeNanoseconds
            try body()
            seconds.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return seconds
    }

    /// The floor of any preprocessing of `volume`: reading its voxels once, on all cores.
    public static func readFloor(_ volume: Volume, repeat count: Int) -> [Double] {
        let workers = ProcessInfo.processInfo.activeProcessorCount
        let seconds = timed(count) {
            var sums = [Float](repeating: 0, count: workers)
            volume.voxels.withUnsafeBufferPointer { v in
                sums.withUnsafeMutableBufferPointer { out in
                    let chunk = (v.count + workers - 1) / workers
                    DispatchQueue.concurrentPerform(iterations: workers) { w in
                        var s: SIMD16<Float> = .zero
                        var i = w * chunk
                        let end = min(v.count, (w + 1) * chunk)
                        guard let base = v.baseAddress else { return }
                        while i + 16 <= end {
                            s += UnsafeRawPointer(base + i).loadUnaligned(as: SIMD16<Float>.self)
                            i += 16
                        }
                        out[w] = s.sum()
                    }
                }
            }
            checksum = sums.reduce(0, +)  // a global store keeps the reads from being optimised away
        }
        return seconds
    }
}
