import Foundation

/// Bytes a data set's values point into: the memory-mapped file, or the
/// inflated stream of a deflated file. Shared by every element, never copied.
public final class ByteSource: @unchecked Sendable {
    public let data: Data
    init(_ data: Data) { self.data = data }

    func withBytes<R>(_ range: Range<Int>, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try data.withUnsafeBytes { raw in try body(UnsafeRawBufferPointer(rebasing: raw[range])) }
    }
}

/// One data element: its VR and where its value lies, or its items (SQ), or its
/// fragments (encapsulated pixel data).
public struct Element: Sendable {
    public let tag: Tag
    public let vr: VR
    /// Byte range of the value in `source` (empty for sequences and encapsulated pixel data).
    public let range: Range<Int>
    /// Items of a sequence.
    public var items: [DataSet] = []
    /// Fragments of encapsulated pixel data, the Basic Offset Table item first.
    public var fragments: [Range<Int>]?
}

/// A parsed DICOM data set (or sequence item).
public struct DataSet: Sendable {
    public internal(set) var elements: [Tag: Element] = [:]
    public let source: ByteSource
    public let bigEndian: Bool

    init(source: ByteSource, bigEndian: Bool) {
        self.source = source
        self.bigEndian = bigEndian
    }

    public subscript(tag: Tag) -> Element? { elements[tag] }
    public func contains(_ tag: Tag) -> Bool { elements[tag] != nil }

    /// Raw value bytes, copied.
    public func bytes(_ tag: Tag) -> [UInt8]? {
        guard let e = elements[tag] else { return nil }
        return source.withBytes(e.range) { Array($0) }
    }

    /// A text value with trailing padding (spaces, NULs) removed; multi-valued text is left joined by `\`.
    public func string(_ tag: Tag) -> String? {
        guard let e = elements[tag] else { return nil }
        let s = source.withBytes(e.range) { String(decoding: $0, as: UTF8.self) }
        return s.trimmingCharacters(in: CharacterSet(charactersIn: " \0"))
    }

    /// Values of a multi-valued text attribute, split at `\` and trimmed.
    public func strings(_ tag: Tag) -> [String] {
        guard let s = string(tag), !s.isEmpty else { return [] }
        return s.split(separator: "\\", omittingEmptySubsequences: false).map {
            $0.trimmingCharacters(in: CharacterSet(charactersIn: " \0"))
        }
    }

    /// Numeric values whatever the VR: DS/IS text, or US/SS/UL/SL/FL/FD binary.
    public func numbers(_ tag: Tag) -> [Double] {
        guard let e = elements[tag] else { return [] }
        switch e.vr {
        case .DS, .IS:
            return strings(tag).compactMap { Double($0) }
        case .US: return binary(e, UInt16.self).map(Double.init)
        case .SS: return binary(e, Int16.self).map(Double.init)
        case .UL: return binary(e, UInt32.self).map(Double.init)
        case .SL: return binary(e, Int32.self).map(Double.init)
        case .FL, .OF: return binary(e, UInt32.self).map { Double(Float(bitPattern: $0)) }
        case .FD, .OD: return binary(e, UInt64.self).map { Double(bitPattern: $0) }
        case .UN:
            // Implicit VR data sets with tags outside the dictionary: try text.
            return strings(tag).compactMap { Double($0) }
        default: return []
        }
    }

    public func number(_ tag: Tag) -> Double? { numbers(tag).first }

    public func int(_ tag: Tag) -> Int? {
        guard let v = number(tag), v.isFinite, abs(v) < 1e15 else { return nil }
        return Int(v.rounded())
    }

    public func sequence(_ tag: Tag) -> [DataSet] { elements[tag]?.items ?? [] }

    func binary<T: FixedWidthInteger>(_ e: Element, _ type: T.Type) -> [T] {
        let size = MemoryLayout<T>.size
        let n = e.range.count / size
        return source.withBytes(e.range) { raw in
            (0..<n).map { i in
                let v = raw.loadUnaligned(fromByteOffset: i * size, as: T.self)
                return bigEndian ? T(bigEndian: v) : T(littleEndian: v)
            }
        }
    }
}
