import AtomicFile
import Foundation
import VolumeCore
import Zlib

/// Writes DICOM Part 10 files: a preamble, the file meta group and a data set in Explicit or
/// Implicit VR Little Endian, Deflated Explicit VR Little Endian, or an encapsulated syntax whose
/// pixel data are given as compressed frames (`PixelEncoder`). Used to write test series and the
/// synthetic datasets; values are given as text, 16-bit words or raw bytes.
public struct DataSetWriter: Sendable {
    enum Value: Sendable {
        case text(String)
        case u16([UInt16])
        case bytes([UInt8])
        /// Encapsulated pixel data: one fragment per frame, after an empty basic offset table.
        case fragments([[UInt8]])
    }

    var elements: [Tag: (VR, Value)] = [:]

    public init() {}

    /// A text attribute (AE, AS, CS, DA, DS, IS, LO, PN, SH, TM, UI …). Multiple values join with `\`.
    public mutating func set(_ tag: Tag, _ vr: VR, _ values: String...) {
        elements[tag] = (vr, .text(values.joined(separator: "\\")))
    }

    /// Decimal strings (DS), written with up to 16 characters each as the standard allows.
    public mutating func set(_ tag: Tag, decimals values: [Double]) {
        elements[tag] = (.DS, .text(values.map(Self.decimalString).joined(separator: "\\")))
    }

    /// Unsigned short (US) values.
    public mutating func set(_ tag: Tag, unsigned values: UInt16...) {
        elements[tag] = (.US, .u16(values))
    }

    /// Raw value bytes (OB, OW of known byte order, UN …).
    public mutating func set(_ tag: Tag, _ vr: VR, bytes: [UInt8]) {
        elements[tag] = (vr, .bytes(bytes))
    }

    /// 16-bit pixel samples, little-endian, as OW Pixel Data.
    public mutating func setPixels<S: Sequence>(_ samples: S) where S.Element == Int16 {
        var bytes: [UInt8] = []
        for v in samples {
            let u = UInt16(bitPattern: v)
            bytes.append(UInt8(truncatingIfNeeded: u))
            bytes.append(UInt8(truncatingIfNeeded: u >> 8))
        }
        elements[.pixelData] = (.OW, .bytes(bytes))
    }

    /// Compressed frames (one fragment each) for an encapsulated transfer syntax.
    public mutating func setEncapsulatedPixels(_ frames: [[UInt8]]) {
        elements[.pixelData] = (.OB, .fragments(frames))
    }

    static func decimalString(_ v: Double) -> String {
        for digits in stride(from: 10, through: 1, by: -1) {
            let s = String(format: "%.\(digits)g", v)
            if s.count <= 16 { return s }
        }
        return String(format: "%.0f", v)
    }

    static func encode(_ value: Value, _ vr: VR) -> [UInt8] {
        switch value {
        case let .text(s):
            var b = Array(s.utf8)
            if b.count % 2 == 1 { b.append(vr == .UI ? 0 : 0x20) }  // UI pads with NUL, text with space
            return b
        case let .u16(v):
            return v.flatMap { [UInt8(truncatingIfNeeded: $0), UInt8(truncatingIfNeeded: $0 >> 8)] }
        case let .bytes(b):
            return b.count % 2 == 1 ? b + [0] : b
        case .fragments:
            return []
        }
    }

    /// Pixel Data of undefined length: items (FFFE,E000), the first an empty offset table, then the
    /// sequence delimiter (PS3.5 A.4).
    static func appendEncapsulated(_ frames: [[UInt8]], to out: inout [UInt8]) {
        func u16(_ v: UInt16) { out += [UInt8(truncatingIfNeeded: v), UInt8(truncatingIfNeeded: v >> 8)] }
        func u32(_ v: UInt32) { for s in stride(from: 0, to: 32, by: 8) { out.append(UInt8(truncatingIfNeeded: v >> UInt32(s))) } }
        u16(Tag.pixelData.group); u16(Tag.pixelData.element)
        out += Array("OB".utf8)
        u16(0); u32(0xFFFF_FFFF)
        for item in [[]] + frames {
            let padded = item.count % 2 == 1 ? item + [0] : item
            u16(0xFFFE); u16(0xE000); u32(UInt32(padded.count))
            out += padded
        }
        u16(0xFFFE); u16(0xE0DD); u32(0)
    }

    static func appendElement(_ tag: Tag, _ vr: VR, _ value: [UInt8], explicit: Bool, to out: inout [UInt8]) {
        func u16(_ v: UInt16) { out += [UInt8(truncatingIfNeeded: v), UInt8(truncatingIfNeeded: v >> 8)] }
        func u32(_ v: UInt32) { for s in stride(from: 0, to: 32, by: 8) { out.append(UInt8(truncatingIfNeeded: v >> UInt32(s))) } }
        u16(tag.group)
        u16(tag.element)
        if explicit {
            out += Array(vr.rawValue.utf8)
            if vr.hasLongLength {
                u16(0)
                u32(UInt32(value.count))
            } else {
                u16(UInt16(value.count))
            }
        } else {
            u32(UInt32(value.count))
        }
        out += value
    }

    /// The file's bytes. `sopClassUID` and `sopInstanceUID` are taken from the data set.
    public func encode(syntax: TransferSyntax = .explicitVRLittleEndian) throws -> Data {
        let encapsulatedPixels: Bool
        if case (_, .fragments)? = elements[.pixelData] { encapsulatedPixels = true } else { encapsulatedPixels = false }
        guard !syntax.isBigEndian, syntax.isEncapsulated == encapsulatedPixels || elements[.pixelData] == nil else {
            throw DICOMError(.unsupported(encapsulatedPixels ? "compressed frames in \(syntax.name)" : "writing \(syntax.name) from native pixels"))
        }
        func text(_ tag: Tag) -> String? {
            if case let (_, .text(s))? = elements[tag] { return s }
            return nil
        }
        var meta: [UInt8] = []
        Self.appendElement(Tag(0x0002, 0x0001), .OB, [0, 1], explicit: true, to: &meta)
        Self.appendElement(.mediaStorageSOPClassUID, .UI, Self.encode(.text(text(.sopClassUID) ?? ""), .UI), explicit: true, to: &meta)
        Self.appendElement(Tag(0x0002, 0x0003), .UI, Self.encode(.text(text(.sopInstanceUID) ?? ""), .UI), explicit: true, to: &meta)
        Self.appendElement(.transferSyntaxUID, .UI, Self.encode(.text(syntax.uid), .UI), explicit: true, to: &meta)
        Self.appendElement(Tag(0x0002, 0x0012), .UI, Self.encode(.text("1.2.826.0.1.3680043.10.1482.1"), .UI), explicit: true, to: &meta)
        var out = [UInt8](repeating: 0, count: 128) + Array("DICM".utf8)
        Self.appendElement(.fileMetaGroupLength, .UL,
                           [UInt8(truncatingIfNeeded: meta.count), UInt8(truncatingIfNeeded: meta.count >> 8),
                            UInt8(truncatingIfNeeded: meta.count >> 16), UInt8(truncatingIfNeeded: meta.count >> 24)],
                           explicit: true, to: &out)
        out += meta
        var body: [UInt8] = []
        for tag in elements.keys.sorted() {
            guard let (vr, value) = elements[tag] else { continue }
            if case let .fragments(frames) = value {
                Self.appendEncapsulated(frames, to: &body)
            } else {
                Self.appendElement(tag, vr, Self.encode(value, vr), explicit: !syntax.isImplicitVR, to: &body)
            }
        }
        if syntax.isDeflated {
            // Everything after the file meta group is one raw deflate stream (PS3.5 A.5).
            let compressed = try body.withUnsafeBytes { raw in
                do { return try Zlib.deflate(raw, format: .raw, level: 6) } catch { throw DICOMError(.codec("deflate: \(error)")) }
            }
            return Data(out) + compressed
        }
        return Data(out + body)
    }

    /// Writes the file atomically (temporary sibling, then rename).
    public func write(to path: String, syntax: TransferSyntax = .explicitVRLittleEndian) throws {
        do {
            try AtomicFile.write(try encode(syntax: syntax), to: path)
        } catch let e as AtomicFile.Error {
            throw DICOMError(.io("cannot write: \(e.reason)"), file: path)
        }
    }
}
