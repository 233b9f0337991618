import AtomicFile
import Foundation

/// A `.safetensors` file: an 8-byte little-endian header length, a JSON header
/// naming each tensor's dtype, shape and byte range, then the raw data.
/// Format: https://github.com/huggingface/safetensors (read from the spec, not from its code).
public struct SafeTensorsFile {
    public struct Entry: Equatable, Sendable {
        public let name: String
        public let dtype: DType
        public let shape: [Int]
        /// Byte range inside the data section.
        public let range: Range<Int>
    }

    public let path: String
    /// Entries in file order (by offset).
    public let entries: [Entry]
    /// Free-form `__metadata__` strings.
    public let metadata: [String: String]
    /// The whole file, memory-mapped.
    let bytes: Data
    let dataStart: Int

    static let dtypeNames: [String: DType] = [
        "F32": .float32, "F16": .float16, "BF16": .bfloat16, "I64": .int64, "U8": .uint8,
        "I32": .int32, "F64": .float64, "BOOL": .bool, "I16": .int16, "I8": .int8,
    ]

    static func name(of dtype: DType) -> String {
        dtypeNames.first { $0.value == dtype }?.key ?? "F32"
    }

    /// Opens and validates `path`. The data is memory-mapped, not read.
    public init(path: String) throws {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            throw TorchError.safetensors(path: path, reason: "cannot read file: \(error.localizedDescription)")
        }
        try self.init(data: data, path: path)
    }

    /// Parses safetensors bytes held in memory; `path` names them in errors.
    public init(data: Data, path: String = "<memory>") throws {
        func fail(_ reason: String) -> TorchError { .safetensors(path: path, reason: reason) }
        guard data.count >= 8 else { throw fail("file is \(data.count) bytes, shorter than the 8-byte header length") }
        var headerLength: UInt64 = 0
        for i in (0..<8).reversed() { headerLength = headerLength << 8 | UInt64(data[data.startIndex + i]) }
        guard headerLength <= UInt64(data.count - 8) else {
            throw fail("header length \(headerLength) runs past the end of the \(data.count)-byte file")
        }
        let start = data.startIndex
        let headerEnd = start + 8 + Int(headerLength)
        let headerBytes = data[(start + 8)..<headerEnd]
        guard headerBytes.first == UInt8(ascii: "{") else { throw fail("header does not start with '{'") }
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: headerBytes)
        } catch {
            throw fail("header is not valid JSON")
        }
        guard let header = object as? [String: Any] else { throw fail("header is not a JSON object") }

        var metadata: [String: String] = [:]
        var entries: [Entry] = []
        let dataLength = data.count - 8 - Int(headerLength)
        for (name, value) in header {
            if name == "__metadata__" {
                guard let m = value as? [String: Any] else { throw fail("__metadata__ is not an object") }
                for (k, v) in m {
                    guard let s = v as? String else { throw fail("__metadata__[\(k)] is not a string") }
                    metadata[k] = s
                }
                continue
            }
            guard let info = value as? [String: Any],
                  let dtypeName = info["dtype"] as? String,
                  let shapeValues = info["shape"] as? [Any],
                  let offsetValues = info["data_offsets"] as? [Any], offsetValues.count == 2
            else { throw fail("tensor '\(name)' lacks dtype, shape or data_offsets") }
            guard let dtype = Self.dtypeNames[dtypeName] else {
                throw fail("tensor '\(name)' has unsupported dtype \(dtypeName)")
            }
            let shape = try shapeValues.map { v -> Int in
                guard let n = (v as? NSNumber)?.intValue, n >= 0 else { throw fail("tensor '\(name)' has a bad shape") }
                return n
            }
            let offsets = try offsetValues.map { v -> Int in
                guard let n = (v as? NSNumber)?.int64Value, n >= 0, n <= Int64(dataLength) else {
                    throw fail("tensor '\(name)' has data offsets outside the \(dataLength)-byte data section")
                }
                return Int(n)
            }
            guard offsets[0] <= offsets[1] else { throw fail("tensor '\(name)' has data offsets in the wrong order") }
            var count = dtype.byteSize
            for s in shape {
                let (p, overflow) = count.multipliedReportingOverflow(by: s)
                guard !overflow else { throw fail("tensor '\(name)' shape \(shape) is too large") }
                count = p
            }
            guard offsets[1] - offsets[0] == count else {
                throw fail("tensor '\(name)' is \(offsets[1] - offsets[0]) bytes but \(dtypeName) \(shape) needs \(count)")
            }
            entries.append(Entry(name: name, dtype: dtype, shape: shape, range: offsets[0]..<offsets[1]))
        }
        entries.sort { ($0.range.lowerBound, $0.range.upperBound, $0.name) < ($1.range.lowerBound, $1.range.upperBound, $1.name) }
        var end = 0
        for entry in entries {
            if entry.range.lowerBound < end {
                let previous = entries.last { $0.range.upperBound == end && $0.name != entry.name }?.name ?? "another tensor"
                throw fail("tensor '\(entry.name)' overlaps '\(previous)' (bytes \(entry.range) against end \(end))")
            }
            guard entry.range.lowerBound == end else {
                throw fail("gap before tensor '\(entry.name)' at byte \(end)")
            }
            end = entry.range.upperBound
        }
        guard end == dataLength else {
            throw fail("data section is \(dataLength) bytes but tensors cover \(end)")
        }
        self.path = path
        self.entries = entries
        self.metadata = metadata
        self.bytes = data
        self.dataStart = 8 + Int(headerLength)
    }

    public var names: [String] { entries.map(\.name) }

    public func entry(_ name: String) -> Entry? { entries.first { $0.name == name } }

    /// The raw bytes of one tensor, without copying.
    public func withBytes<R>(of entry: Entry, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try bytes.withUnsafeBytes { raw in
            try body(UnsafeRawBufferPointer(rebasing: raw[(dataStart + entry.range.lowerBound)..<(dataStart + entry.range.upperBound)]))
        }
    }

    /// A CPU tensor holding a copy of `name`.
    public func tensor(_ name: String) throws -> Tensor {
        guard let entry = entry(name) else {
            throw TorchError.safetensors(path: path, reason: "no tensor named '\(name)'")
        }
        return try withBytes(of: entry) { try Tensor.copying(bytes: $0, shape: entry.shape, dtype: entry.dtype) }
    }

    /// All tensors, copied, keyed by name.
    public func tensors() throws -> [String: Tensor] {
        var result: [String: Tensor] = [:]
        for entry in entries { result[entry.name] = try tensor(entry.name) }
        return result
    }
}

public enum SafeTensors {
    /// Serialises named tensors (in the given order) to safetensors bytes.
    public static func encode(_ tensors: [(String, Tensor)], metadata: [String: String] = [:]) throws -> Data {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        var seen = Set<String>()
        var payloads: [(Tensor, Int)] = []
        for (name, tensor) in tensors {
            guard seen.insert(name).inserted else { throw TorchError.invalidArgument("duplicate tensor name '\(name)'") }
            guard name != "__metadata__" else { throw TorchError.invalidArgument("'__metadata__' is reserved") }
            let cpu = try tensor.device == .cpu && tensor.isContiguous ? tensor : tensor.to(.cpu).contiguous()
            let length = cpu.count * cpu.dtype.byteSize
            header[name] = ["dtype": SafeTensorsFile.name(of: cpu.dtype), "shape": cpu.shape, "data_offsets": [offset, offset + length]]
            payloads.append((cpu, length))
            offset += length
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        // Pad with spaces so the data section starts 8-byte aligned.
        while (8 + json.count) % 8 != 0 { json.append(UInt8(ascii: " ")) }
        var out = Data(capacity: 8 + json.count + offset)
        var length = UInt64(json.count).littleEndian
        withUnsafeBytes(of: &length) { out.append(contentsOf: $0) }
        out.append(json)
        for (tensor, _) in payloads {
            try tensor.withUnsafeBytes { out.append(contentsOf: $0) }
        }
        return out
    }

    /// Writes named tensors to `path` atomically (temporary file, then rename),
    /// so a crash or full disk never leaves a half-written file in its place.
    public static func write(_ tensors: [(String, Tensor)], metadata: [String: String] = [:], to path: String) throws {
        let data = try encode(tensors, metadata: metadata)
        do {
            try AtomicFile.write(data, to: path)
        } catch let e as AtomicFile.Error {
            throw TorchError.io(path: path, reason: e.reason)
        }
    }
}

