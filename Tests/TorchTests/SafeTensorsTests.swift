import Foundation
import TestSupport
import Testing
import Torch

@Suite struct SafeTensorsTests {
    init() throws { _ = try engine() }

    func sample() throws -> Data {
        try SafeTensors.encode([
            ("a", Tensor((0..<12).map(Float.init), shape: [3, 4])),
            ("b", Tensor([Int64(1), 2, 3], shape: [3])),
            ("c", Tensor.ones([2, 2]).to(.bfloat16)),
            ("d", Tensor.ones([5]).to(.float16)),
            ("e", Tensor([UInt8(9)], shape: [1])),
            ("scalar", Tensor.zeros([], dtype: .int64)),
        ], metadata: ["format": "pt"])
    }

    @Test func roundTripKeepsNamesDTypesShapesAndBytes() throws {
        let file = try SafeTensorsFile(data: sample())
        #expect(Set(file.names) == ["a", "b", "c", "d", "e", "scalar"])
        #expect(file.metadata == ["format": "pt"])
        #expect(file.entry("c")?.dtype == .bfloat16)
        #expect(file.entry("d")?.dtype == .float16)
        #expect(file.entry("scalar")?.shape == [])
        #expect(try file.tensor("a").toArray(of: Float.self) == (0..<12).map(Float.init))
        #expect(try file.tensor("b").toArray(of: Int64.self) == [1, 2, 3])
        #expect(try file.tensor("c").floats() == [1, 1, 1, 1])
        #expect(try file.tensor("e").toArray(of: UInt8.self) == [9])
        #expect(throws: TorchError.self) { try file.tensor("missing") }
    }

    @Test func headerIsAlignedAndParsesAsJSON() throws {
        let data = try sample()
        let n = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        #expect((8 + n) % 8 == 0)
        #expect(try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + n))) is [String: Any])
    }

    @Test func truncationAtEveryOffsetIsATypedError() throws {
        let data = try sample()
        for cut in stride(from: 0, to: data.count, by: 7) {
            #expect(throws: TorchError.self, "cut at \(cut)") { try SafeTensorsFile(data: data.prefix(cut)) }
        }
    }

    func file(header: String, dataBytes: Int) -> Data {
        var d = Data()
        var n = UInt64(header.utf8.count).littleEndian
        withUnsafeBytes(of: &n) { d.append(contentsOf: $0) }
        d.append(Data(header.utf8))
        d.append(Data(count: dataBytes))
        return d
    }

    func reason(_ data: Data) -> String {
        do {
            _ = try SafeTensorsFile(data: data)
            return "accepted"
        } catch let TorchError.safetensors(_, reason) {
            return reason
        } catch {
            return "other error \(error)"
        }
    }

    @Test func headerLengthBeyondTheFile() {
        var d = Data([0xFF, 0xFF, 0, 0, 0, 0, 0, 0])
        d.append(Data("{}".utf8))
        #expect(reason(d).contains("runs past the end"))
    }

    @Test func overlappingOffsets() {
        let h = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#
        #expect(reason(file(header: h, dataBytes: 12)).contains("overlaps"))
    }

    @Test func otherMalformedHeaders() {
        let gap = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        #expect(reason(file(header: gap, dataBytes: 8)).contains("gap"))
        let wrongSize = #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#
        #expect(reason(file(header: wrongSize, dataBytes: 8)).contains("needs 12"))
        let outside = #"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#
        #expect(reason(file(header: outside, dataBytes: 8)).contains("outside"))
        let badType = #"{"a":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}}"#
        #expect(reason(file(header: badType, dataBytes: 8)).contains("unsupported dtype"))
        #expect(reason(file(header: "{not json", dataBytes: 0)).contains("not valid JSON"))
        #expect(reason(file(header: "[1,2]", dataBytes: 0)).contains("start with"))
        let trailing = #"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#
        #expect(reason(file(header: trailing, dataBytes: 5)).contains("cover"))
    }

    @Test func randomByteFlipsNeverCrash() throws {
        let data = try sample()
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<300 {
            var d = data
            let i = Int.random(in: 0..<d.count, using: &rng)
            d[i] ^= UInt8.random(in: 1...255, using: &rng)
            // Either a typed error or a file whose entries are all in bounds.
            if let f = try? SafeTensorsFile(data: d) {
                for e in f.entries { _ = try f.tensor(e.name) }
            }
        }
    }

    @Test func duplicateNamesAreRefusedWhenWriting() throws {
        let t = try Tensor.zeros([1])
        #expect(throws: TorchError.self) { try SafeTensors.encode([("x", t), ("x", t)]) }
    }

    @Test func missingFileIsATypedError() {
        #expect(throws: TorchError.self) { try SafeTensorsFile(path: "/nonexistent/w.safetensors") }
    }
}
