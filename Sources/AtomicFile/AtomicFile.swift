import Foundation

/// Writes files so that a crash or a full disk never leaves a half-written file in place:
/// the bytes go to a temporary sibling, which is then renamed over the target.
public enum AtomicFile {
    public struct Error: Swift.Error, CustomStringConvertible {
        public var path: String
        public var reason: String
        public var description: String { "\(path): cannot write: \(reason)" }
    }

    public static func write(_ data: Data, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let temp = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).tmp-\(ProcessInfo.processInfo.processIdentifier)")
        do {
            try data.write(to: temp)
            guard rename(temp.path, url.path) == 0 else {
                throw Error(path: path, reason: String(cString: strerror(errno)))
            }
        } catch let e as Error {
            try? FileManager.default.removeItem(at: temp)
            throw e
        } catch {
            try? FileManager.default.removeItem(at: temp)
            throw Error(path: path, reason: error.localizedDescription)
        }
    }
}
