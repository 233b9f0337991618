import ArgumentParser
import Foundation
import Torch
#if canImport(Glibc)
import Glibc
#endif

struct Launch: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a willis command as N processes of one data-parallel job on this machine (as torchrun does).",
        discussion: """
            Each process gets RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT, \
            which willis train and willis predict read (so torchrun, srun or a Kubernetes indexed job can \
            start them the same way without this command). If one process fails, the others are stopped and \
            its exit status is returned (status 3, finished with some series failed, stops nothing).

              willis launch --nproc 2 -- train --data DATA --out RUN
              # two machines, 2 processes each (run on both, node-rank 0 and 1):
              willis launch --nnodes 2 --node-rank 0 --nproc 2 --master-addr 10.0.0.1 --master-port 29500 -- train ...
            """)

    @Option(help: "Processes on this machine.") var nproc: Int
    @Option(help: "Machines in the job.") var nnodes: Int = 1
    @Option(help: "This machine's index among them (0 hosts the rendezvous).") var nodeRank: Int = 0
    @Option(help: "Address of the machine with node rank 0.") var masterAddr: String = "127.0.0.1"
    @Option(help: "Rendezvous port (default: a free one; give it when there are several machines).") var masterPort: Int?
    @Argument(parsing: .captureForPassthrough, help: "The willis command and its arguments, after --.") var command: [String] = []

    func run() throws {
        let arguments = command.first == "--" ? Array(command.dropFirst()) : command
        guard !arguments.isEmpty else { throw ValidationError("give the command after --, e.g. willis launch --nproc 2 -- train --data DIR") }
        guard nproc >= 1, nnodes >= 1, (0..<nnodes).contains(nodeRank) else { throw ValidationError("--nproc and --nnodes must be ≥ 1, --node-rank in 0..<--nnodes") }
        if nnodes > 1 && masterPort == nil { throw ValidationError("several machines need one --master-port") }
        let port = try masterPort ?? Self.freePort()
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let world = nnodes * nproc
        var processes: [Process] = []
        let finished = DispatchSemaphore(value: 0)
        for local in 0..<nproc {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
            let place = DistributedEnvironment(rank: nodeRank * nproc + local, worldSize: world, localRank: local,
                                               localWorldSize: nproc, masterAddress: masterAddr, masterPort: port)
            process.environment = ProcessInfo.processInfo.environment.merging(place.variables) { $1 }
            process.terminationHandler = { _ in finished.signal() }
            try process.run()
            processes.append(process)
        }
        print("launched \(nproc) process(es), ranks \(nodeRank * nproc)..<\(nodeRank * nproc + nproc) of \(world), rendezvous \(masterAddr):\(port)")
        var status: Int32 = 0
        for _ in processes {
            finished.wait()
            // The first failure stops the rest: they would otherwise wait for it until their timeout.
            // Status 3 is willis's "finished, with some series failed": the others finish too.
            if status == 0, let failed = processes.first(where: { !$0.isRunning && ![0, 3].contains($0.terminationStatus) }) {
                status = failed.terminationStatus
                let rank = (processes.firstIndex(of: failed) ?? 0) + nodeRank * nproc
                FileHandle.standardError.write(Data("launch: rank \(rank) exited with status \(status); stopping the others\n".utf8))
                for p in processes where p.isRunning { p.terminate() }
            }
        }
        if status == 0, processes.contains(where: { $0.terminationStatus == 3 }) { status = 3 }
        if status != 0 { throw ExitCode(status) }
    }

    /// A port free on this machine now (the kernel's pick for port 0).
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ValidationError("cannot open a socket to find a free port") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0 else { throw ValidationError("cannot bind a socket to find a free port") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
