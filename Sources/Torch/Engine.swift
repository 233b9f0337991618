import CWillisEngine
import Foundation

/// The loaded libtorch engine library.
///
/// The library is found, in order, at: the path given to `Engine.load(path:)`
/// (the CLI's `--engine`), `$WILLIS_ENGINE`, then `libwillis_engine.so` in
/// `.build-engine/` of the current directory or of any parent of the
/// executable, then next to the executable. `scripts/build-engine` makes it.
public final class Engine: @unchecked Sendable {
    /// Path the library was loaded from.
    public let path: String
    let api: UnsafePointer<wl_api>

    private init(path: String, api: UnsafePointer<wl_api>) {
        self.path = path
        self.api = api
    }

    nonisolated(unsafe) private static var loaded: Engine?
    private static let lock = NSLock()

    static let libraryName = "libwillis_engine.so"
    static let buildHint =
        "build it with `scripts/build-engine` (or `scripts/setup`), or point to one with --engine PATH or WILLIS_ENGINE=PATH"

    /// Candidate locations, most specific first.
    public static func searchPaths() -> [String] {
        var paths: [String] = []
        if let env = ProcessInfo.processInfo.environment["WILLIS_ENGINE"], !env.isEmpty {
            paths.append(env)
        }
        let cwd = FileManager.default.currentDirectoryPath
        paths.append("\(cwd)/.build-engine/\(libraryName)")
        var dir = URL(fileURLWithPath: CommandLine.arguments.first ?? cwd).resolvingSymlinksInPath()
            .deletingLastPathComponent()
        paths.append(dir.appendingPathComponent(libraryName).path)
        while dir.path != "/" {
            paths.append(dir.appendingPathComponent(".build-engine/\(libraryName)").path)
            dir.deleteLastPathComponent()
        }
        return paths
    }

    /// Loads the engine from `path`, or from the first search path that exists.
    /// Loading twice returns the engine already loaded.
    @discardableResult
    public static func load(path: String? = nil) throws -> Engine {
        lock.lock()
        defer { lock.unlock() }
        if let loaded {
            if let path, path != loaded.path {
                throw TorchError.engineUnavailable(
                    path: path, reason: "an engine is already loaded from \(loaded.path)")
            }
            return loaded
        }
        let candidates = path.map { [$0] } ?? searchPaths()
        guard let chosen = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
            throw TorchError.engineUnavailable(
                path: candidates.first ?? libraryName,
                reason: "no engine library found (looked in \(candidates.joined(separator: ", "))); \(buildHint)")
        }
        let engine = try open(path: chosen)
        loaded = engine
        return engine
    }

    /// Opens and checks the library at `path` without making it the shared engine.
    public static func open(path: String) throws -> Engine {
        guard FileManager.default.fileExists(atPath: path) else {
            throw TorchError.engineUnavailable(path: path, reason: "no such file; \(buildHint)")
        }
        var message = [CChar](repeating: 0, count: 2048)
        guard let api = wl_open_engine(path, &message, message.count) else {
            let reason = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw TorchError.engineUnavailable(path: path, reason: "\(reason); \(buildHint)")
        }
        guard api.pointee.struct_size >= UInt32(MemoryLayout<wl_api>.size) else {
            throw TorchError.engineUnavailable(
                path: path, reason: "library is older than this willis (ABI table too small); \(buildHint)")
        }
        return Engine(path: path, api: api)
    }

    /// The loaded engine, loading it from the default locations if needed.
    public static func shared() throws -> Engine {
        // Written once, under the lock, before any tensor exists; every op reads it.
        if let loaded { return loaded }
        return try load()
    }

    /// libtorch's version string, e.g. "2.13.0+cpu".
    public var torchVersion: String { api.pointee.torch_version().map { String(cString: $0) } ?? "unknown" }

    /// Whether this libtorch was built with CUDA and a device is visible.
    public var cudaAvailable: Bool { api.pointee.capabilities() & UInt32(WL_CAP_CUDA) != 0 }
    /// Whether the library was built with torch.distributed (c10d process groups).
    public var distributedAvailable: Bool { api.pointee.capabilities() & UInt32(WL_CAP_DISTRIBUTED) != 0 }

    public var cudaDeviceCount: Int { Int(api.pointee.cuda_device_count()) }

    /// libtorch's build configuration and parallel settings, as text.
    public func buildInfo() throws -> String {
        var out: UnsafeMutablePointer<CChar>?
        try check(api.pointee.build_info(&out), "build_info")
        guard let out else { return "" }
        defer { api.pointee.string_free(out) }
        return String(cString: out)
    }

    /// Turns a status into a throw, reading the thread's error message now.
    @inline(__always)
    func check(_ status: wl_status, _ op: @autoclosure () -> String) throws {
        if status != WL_OK {
            throw TorchError.operation(op: op(), message: api.pointee.last_error().map { String(cString: $0) } ?? "unknown engine error")
        }
    }
}

extension Engine {
    /// The loaded engine, for calls on tensors that already exist: a tensor
    /// can only be made through a loaded engine, so this cannot fail then.
    @inline(__always)
    static var current: Engine {
        guard let loaded else { preconditionFailure("engine used before Engine.load()") }
        return loaded
    }
}
