import Foundation

/// Where bfloat16 autocast pays. libtorch runs bfloat16 convolutions natively on CUDA and on CPUs with
/// AVX-512 BF16 or AMX; on any other CPU (AVX2 only, say) it has no fast bfloat16 convolution, and a
/// network asked for bf16 there runs two to three orders of magnitude slower than in float32 (measured
/// in Willis and in PyTorch alike, RESULTS.md stop 30). Willis then runs float32 instead and says so.
public enum MixedPrecision {
    /// The x86 flags (as /proc/cpuinfo names them) that give native bfloat16 convolutions.
    public static let nativeBF16Flags: Set<String> = ["avx512_bf16", "amx_bf16"]

    /// The autocast type to run on `device` when `requested` is asked for, and why it differs (nil when
    /// it does not). `cpuFlags` are the CPU's feature flags; nil (unknown, e.g. not Linux) keeps the
    /// request.
    public static func usable(_ requested: DType?, on device: Device,
                              cpuFlags: Set<String>? = HostCPU.flags) -> (autocast: DType?, note: String?) {
        guard requested == .bfloat16, device == .cpu, let flags = cpuFlags, flags.isDisjoint(with: nativeBF16Flags) else {
            return (requested, nil)
        }
        return (nil, "bf16 was asked for, but this CPU has neither AVX-512 BF16 nor AMX, where libtorch's bfloat16 convolutions run a hundred times slower than float32 or more: running in fp32")
    }
}

/// The CPU this process runs on.
public enum HostCPU {
    /// The feature flags of the first CPU in /proc/cpuinfo; nil where it cannot be read.
    public static let flags: Set<String>? = {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
              let values = line.split(separator: ":", maxSplits: 1).last else { return nil }
        return Set(values.split(separator: " ").map(String.init))
    }()

    /// The model name in /proc/cpuinfo.
    public static var model: String {
        let text = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let line = text.split(separator: "\n").first { $0.hasPrefix("model name") }
        return line.flatMap { $0.split(separator: ":", maxSplits: 1).last }.map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown CPU"
    }
}
