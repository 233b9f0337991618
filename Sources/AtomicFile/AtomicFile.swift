import Foundation

/// Writes files so that a crash or a full disk never leaves a half-written file in place:
/// the bytes go to a temporary sibling, are flushed to the disk, and the sibling is then renamed
/// over the target. On any failure the previous file is untouched and the sibling is removed.
public enum AtomicFile {
    public struct Error: Swift.Error, CustomStringConvertible {
        public var path: String
        public var reason: String
        public var description: String { "\(path): cannot write: \(reason)" }
    }

    public static func write(_ data: Data, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let temp = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).tmp-\(ProcessInfo.processInfo.processIdentifier)").path
        func failure(_ step: String) -> Error {
            let reason = "\(step): \(String(cString: strerror(errno)))"
            unlink(temp)
            return Error(path: path, reason: reason)
        }
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw failure("cannot create \(temp)") }
        var written = 0
        let ok = data.withUnsafeBytes { raw -> Bool in
            guard let base = raw.baseAddress else { return true }
            while written < raw.count {
                let n = Foundation.write(fd, base + written, raw.count - written)
                if n < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                written += n
            }
            return true
        }
        // A full disk (ENOSPC) or a file-size limit (EFBIG) shows up here or at fsync.
        guard ok else { close(fd); throw failure("write failed after \(written) of \(data.count) bytes") }
        guard fsync(fd) == 0 else { close(fd); throw failure("fsync failed") }
        guard close(fd) == 0 else { throw failure("close failed") }
        guard rename(temp, path) == 0 else { throw failure("rename failed") }
    }
}
