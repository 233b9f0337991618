import Foundation
import Torch

/// The one checkpoint format both training loops write: their tensors under their names, the optimizer's
/// serialised state as a byte tensor, and the loop's own state (epoch, schedule, generator, config) as
/// JSON metadata, in one safetensors file written atomically.
enum TrainingCheckpoint {
    static let optimizerKey = "__optimizer_state__"
    static let stateKey = "willis_training_state"
    static let modelKey = "willis_model"

    /// A loop's own state: epoch, learning-rate schedule, generator, config.
    struct State<Schedule: Codable>: Codable {
        var epoch: Int
        var schedule: Schedule
        var rngState: UInt64
        var config: TrainingConfig
    }

    static func write<State: Encodable>(_ tensors: [(String, Tensor)], optimizer: Optimizer, state: State, model: String?, to path: String) throws {
        let json = String(decoding: try JSONEncoder().encode(state), as: UTF8.self)
        let bytes = [UInt8](try optimizer.stateData())
        var metadata = [stateKey: json]
        if let model { metadata[modelKey] = model }
        try SafeTensors.write(tensors + [(optimizerKey, try Tensor(bytes, shape: [bytes.count]))], metadata: metadata, to: path)
    }

    /// The file's tensors (without the optimizer's), and its state, after restoring `optimizer`. `model`
    /// must match what the file was written for (nil: the reference loop, which wrote no model name).
    static func read<State: Decodable>(_ path: String, model: String?, optimizer: Optimizer, as: State.Type) throws -> ([String: Tensor], State) {
        let file = try SafeTensorsFile(path: path)
        guard let json = file.metadata[stateKey], file.metadata[modelKey] == model else {
            throw TorchError.safetensors(path: path, reason: "not a Willis \(model ?? "reference") training checkpoint")
        }
        let state: State
        do { state = try JSONDecoder().decode(State.self, from: Data(json.utf8)) } catch {
            // Settings added since the checkpoint was written take their defaults (TrainingConfig's decoding),
            // so this is a damaged or foreign state, not an older one.
            throw TorchError.safetensors(path: path, reason: "a \(model ?? "reference") training checkpoint whose state cannot be read: \(error)")
        }
        var tensors: [String: Tensor] = [:]
        for name in file.names where name != optimizerKey { tensors[name] = try file.tensor(name) }
        try optimizer.loadState(Data(try file.tensor(optimizerKey).toArray(of: UInt8.self)))
        return (tensors, state)
    }
}
