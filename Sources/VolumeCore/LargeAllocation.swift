#if canImport(Glibc)
import Glibc
#endif

/// Helpers for the few allocations as large as a whole volume.
public enum LargeAllocation {
    /// Asks the kernel to back `buffer` with 2 MB pages (transparent huge pages in "madvise"
    /// mode). Must be called before the memory is first touched. A hint: failure is harmless.
    public static func adviseHugePages(_ buffer: UnsafeMutableRawBufferPointer) {
        #if os(Linux)
        guard let base = buffer.baseAddress, buffer.count >= 4 << 20 else { return }
        let huge = 2 << 20
        let start = (Int(bitPattern: base) + huge - 1) & ~(huge - 1)
        let end = (Int(bitPattern: base) + buffer.count) & ~(huge - 1)
        guard end > start, let aligned = UnsafeMutableRawPointer(bitPattern: start) else { return }
        _ = madvise(aligned, end - start, 14)  // MADV_HUGEPAGE
        #endif
    }
}
