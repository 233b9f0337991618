import CWillisEngine
import Foundation

/// Why a distributed step failed: a peer that died or hung, a rendezvous that never completed, or
/// an environment that does not describe a world. Every collective has a timeout, so these arrive
/// instead of a hang.
public enum DistributedError: Error, CustomStringConvertible, Equatable {
    case unavailable(String)
    case environment(String)
    case rendezvous(rank: Int, worldSize: Int, master: String, message: String)
    case collective(op: String, rank: Int, message: String)

    public var description: String {
        switch self {
        case let .unavailable(s): return "torch.distributed is unavailable: \(s)"
        case let .environment(s): return "distributed environment: \(s)"
        case let .rendezvous(rank, world, master, message):
            return "rank \(rank) of \(world) could not meet the others at \(master): \(message)"
        case let .collective(op, rank, message):
            return "rank \(rank): \(op) failed (a peer stopped, or the timeout passed): \(message)"
        }
    }
}

/// Where this process sits in a distributed job, read from the environment every PyTorch launcher
/// sets (torchrun, `willis launch`, Slurm through them, Kubernetes indexed jobs): RANK, WORLD_SIZE,
/// LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT.
public struct DistributedEnvironment: Sendable, Equatable {
    public var rank: Int
    public var worldSize: Int
    public var localRank: Int
    public var localWorldSize: Int
    public var masterAddress: String
    public var masterPort: Int

    public init(rank: Int, worldSize: Int, localRank: Int = 0, localWorldSize: Int = 1, masterAddress: String = "127.0.0.1", masterPort: Int = 29500) {
        self.rank = rank
        self.worldSize = worldSize
        self.localRank = localRank
        self.localWorldSize = localWorldSize
        self.masterAddress = masterAddress
        self.masterPort = masterPort
    }

    /// The variables a launcher sets for this process (what `from` reads back).
    public var variables: [String: String] {
        ["RANK": String(rank), "WORLD_SIZE": String(worldSize), "LOCAL_RANK": String(localRank),
         "LOCAL_WORLD_SIZE": String(localWorldSize), "MASTER_ADDR": masterAddress, "MASTER_PORT": String(masterPort)]
    }

    /// Nil when WORLD_SIZE is unset or 1 (one process); an error when the variables contradict each other.
    public static func from(_ env: [String: String] = ProcessInfo.processInfo.environment) throws -> DistributedEnvironment? {
        guard let worldText = env["WORLD_SIZE"] else { return nil }
        guard let world = Int(worldText), world >= 1 else { throw DistributedError.environment("WORLD_SIZE='\(worldText)' is not a positive integer") }
        if world == 1 { return nil }
        guard let rankText = env["RANK"], let rank = Int(rankText), rank >= 0, rank < world else {
            throw DistributedError.environment("RANK='\(env["RANK"] ?? "")' is not in 0..<\(world)")
        }
        let localRank = Int(env["LOCAL_RANK"] ?? "") ?? 0
        let localWorld = Int(env["LOCAL_WORLD_SIZE"] ?? "") ?? 1
        guard let address = env["MASTER_ADDR"], !address.isEmpty else { throw DistributedError.environment("MASTER_ADDR is not set") }
        guard let portText = env["MASTER_PORT"], let port = Int(portText), (1...65535).contains(port) else {
            throw DistributedError.environment("MASTER_PORT='\(env["MASTER_PORT"] ?? "")' is not a port")
        }
        return DistributedEnvironment(rank: rank, worldSize: world, localRank: localRank, localWorldSize: localWorld,
                                      masterAddress: address, masterPort: port)
    }
}

/// A torch.distributed (c10d) process group: Gloo for CPU tensors, NCCL for CUDA tensors.
public final class ProcessGroup: @unchecked Sendable {
    public enum Backend: String, Sendable { case gloo, nccl }
    public enum ReduceOp: Int32, Sendable {
        case sum, mean, max, min
        var engineValue: Int32 {
            switch self {
            case .sum: return Int32(WL_SUM.rawValue)
            case .mean: return Int32(WL_MEAN.rawValue)
            case .max: return Int32(WL_AMAX.rawValue)
            case .min: return Int32(WL_AMIN.rawValue)
            }
        }
    }

    let handle: OpaquePointer
    public let rank: Int
    public let worldSize: Int
    public let backend: Backend

    /// Meets the other ranks (rank 0 serves the rendezvous at the master address) and makes the group.
    /// Collectives fail after `timeout` seconds rather than wait for a peer that is gone.
    public init(_ environment: DistributedEnvironment, backend: Backend = .gloo, timeout: Double = 600) throws {
        let engine = try Engine.shared()
        guard engine.api.pointee.capabilities() & UInt32(WL_CAP_DISTRIBUTED) != 0 else {
            throw DistributedError.unavailable("the engine at \(engine.path) was built without c10d (install libgloo-dev, then scripts/build-engine)")
        }
        var out: OpaquePointer?
        let status = engine.api.pointee.pg_create(backend.rawValue, environment.masterAddress, Int32(environment.masterPort),
                                                   Int32(environment.rank), Int32(environment.worldSize), Int64(timeout * 1000), &out)
        guard status == WL_OK, let out else {
            throw DistributedError.rendezvous(rank: environment.rank, worldSize: environment.worldSize,
                                              master: "\(environment.masterAddress):\(environment.masterPort)",
                                              message: engine.api.pointee.last_error().map { String(cString: $0) } ?? "unknown")
        }
        handle = out
        rank = environment.rank
        worldSize = environment.worldSize
        self.backend = backend
    }

    deinit { Engine.current.api.pointee.pg_free(handle) }

    func run(_ op: String, _ body: (UnsafePointer<wl_api>) -> wl_status) throws {
        let api = Engine.current.api
        guard body(api) == WL_OK else {
            throw DistributedError.collective(op: op, rank: rank, message: api.pointee.last_error().map { String(cString: $0) } ?? "unknown")
        }
    }

    /// Reduces `tensors` in place across the ranks (one coalesced collective for all of them).
    public func allReduce(_ tensors: [Tensor], _ op: ReduceOp = .sum) throws {
        var handles: [OpaquePointer?] = tensors.map { $0.handle }
        try run("all-reduce of \(tensors.count) tensor(s)") { api in
            handles.withUnsafeMutableBufferPointer { api.pointee.pg_all_reduce(handle, $0.baseAddress, Int32($0.count), op.engineValue) }
        }
    }

    /// Every rank's `tensors` take `root`'s values.
    public func broadcast(_ tensors: [Tensor], from root: Int = 0) throws {
        var handles: [OpaquePointer?] = tensors.map { $0.handle }
        try run("broadcast of \(tensors.count) tensor(s) from rank \(root)") { api in
            handles.withUnsafeMutableBufferPointer { api.pointee.pg_broadcast(handle, $0.baseAddress, Int32($0.count), Int32(root)) }
        }
    }

    /// Returns when every rank has reached it.
    public func barrier() throws {
        try run("barrier") { api in api.pointee.pg_barrier(handle) }
    }

    /// `value` summed (or reduced by `op`) over the ranks.
    public func reduce(_ value: Double, _ op: ReduceOp = .sum) throws -> Double {
        let t = try Tensor([value], shape: [1])
        try allReduce([t], op)
        return try t.toArray(of: Double.self)[0]
    }
}
