import Foundation

/// This process's memory, for reports (`willis predict`, `willis bench pipeline`).
public enum ProcessMemory {
    /// Peak and current resident memory of this process, in bytes (from /proc/self/status).
    public static func resident() -> (peak: Int, current: Int) {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return (0, 0) }
        func field(_ name: String) -> Int {
            guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }) else { return 0 }
            return (Int(line.split(separator: " ").dropFirst().first { !$0.isEmpty }.map(String.init) ?? "") ?? 0) * 1024
        }
        return (field("VmHWM"), field("VmRSS"))
    }
}
