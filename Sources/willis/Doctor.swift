import ArgumentParser
import Foundation
import Torch

struct Doctor: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the engine library, libtorch version, devices, threads and CPU features.",
        discussion: "What to check first when Willis is slow or its engine fails to load.")

    @OptionGroup var engineOptions: EngineOptions

    func run() throws {
        print("willis doctor")
        print("  machine:        \(MachineInfo.cpuModel) (\(ProcessInfo.processInfo.activeProcessorCount) logical cores, \(MachineInfo.memoryGiB) GiB)")
        print("  cpu features:   \(MachineInfo.cpuFeatures.joined(separator: " "))")
        let engine: Engine
        do {
            engine = try engineOptions.load()
        } catch {
            print("  engine:         NOT LOADED")
            print("    \(error)")
            print("  searched:       \(Engine.searchPaths().joined(separator: "\n                  "))")
            throw ExitCode(2)
        }
        print("  engine library: \(engine.path)")
        print("  libtorch:       \(engine.torchVersion)")
        print("  threads:        \(Torch.threadCount)")
        print("  cuda:           \(engine.cudaAvailable ? "available, \(engine.cudaDeviceCount) device(s)" : "not available")")
        print("  distributed:    \(engine.distributedAvailable ? "c10d (Gloo\(engine.cudaAvailable ? ", NCCL if built with it" : ""))" : "not built in (install libgloo-dev, then scripts/build-engine)")")
        let info = try engine.buildInfo()
        print("  build:")
        for line in info.split(separator: "\n") where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            print("    \(line)")
        }
    }
}

/// Facts about the machine, read from /proc.
enum MachineInfo {
    static var cpuModel: String { HostCPU.model }

    /// The vector features that decide which libtorch kernels run.
    static var cpuFeatures: [String] {
        guard let present = HostCPU.flags else { return ["unknown"] }
        let wanted = ["sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16"]
        return wanted.filter(present.contains)
    }

    static var memoryGiB: Int {
        Int((Double(ProcessInfo.processInfo.physicalMemory) / 1_073_741_824).rounded())
    }
}
