/// Everything the engine or a weight file can get wrong, with what and where.
public enum TorchError: Error, CustomStringConvertible, Equatable {
    /// The engine library could not be loaded; `reason` says how to fix it.
    case engineUnavailable(path: String, reason: String)
    /// libtorch refused an operation (bad shape, dtype, device, …).
    case operation(op: String, message: String)
    /// A Swift-side argument check failed before calling the engine.
    case invalidArgument(String)
    /// A safetensors file is malformed.
    case safetensors(path: String, reason: String)
    /// Reading or writing a file failed.
    case io(path: String, reason: String)
    /// Loading named weights found mismatches (as `load_state_dict(strict=True)`).
    case stateDictMismatch(missing: [String], unexpected: [String], shapeMismatches: [String])

    public var description: String {
        switch self {
        case let .engineUnavailable(path, reason):
            return "engine library unavailable at \(path): \(reason)"
        case let .operation(op, message):
            return "\(op): \(message)"
        case let .invalidArgument(message):
            return message
        case let .safetensors(path, reason):
            return "\(path): invalid safetensors file: \(reason)"
        case let .io(path, reason):
            return "\(path): \(reason)"
        case let .stateDictMismatch(missing, unexpected, shapes):
            var parts: [String] = []
            if !missing.isEmpty { parts.append("missing keys: \(missing.joined(separator: ", "))") }
            if !unexpected.isEmpty { parts.append("unexpected keys: \(unexpected.joined(separator: ", "))") }
            if !shapes.isEmpty { parts.append("size mismatches: \(shapes.joined(separator: "; "))") }
            return "error loading state dict: " + parts.joined(separator: "; ")
        }
    }
}
