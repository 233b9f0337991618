import Foundation
import Zlib

/// How to read a file.
public struct ReadOptions: Sendable {
    /// Stop before the pixel data (for grouping and sorting a series).
    public var headerOnly = false
    /// Refuse to decode pixel data larger than this many bytes, before allocating.
    public var maxPixelBytes = 4 << 30

    public init(headerOnly: Bool = false, maxPixelBytes: Int = 4 << 30) {
        self.headerOnly = headerOnly
        self.maxPixelBytes = maxPixelBytes
    }
}

/// A DICOM Part 10 file (or a bare data set): its file meta group, transfer
/// syntax and data set. The file is memory-mapped; values are read in place.
public struct DICOMFile: Sendable {
    public let path: String
    public let meta: DataSet?
    public let transferSyntax: TransferSyntax
    public let dataSet: DataSet

    /// Reads `path` (memory-mapped).
    public static func read(_ path: String, options: ReadOptions = ReadOptions()) throws -> DICOMFile {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            throw DICOMError(.io(error.localizedDescription), file: path)
        }
        return try parse(data, path: path, options: options)
    }

    /// Parses DICOM bytes; `path` names them in errors.
    public static func parse(_ data: Data, path: String = "<memory>", options: ReadOptions = ReadOptions()) throws -> DICOMFile {
        let source = ByteSource(data)
        let count = data.count
        return try data.withUnsafeBytes { raw -> DICOMFile in
            // PS3.10 §7.1: 128-byte preamble + "DICM", then the meta group. Some files omit both.
            var p = 0
            if count >= 132, raw[128] == 0x44, raw[129] == 0x49, raw[130] == 0x43, raw[131] == 0x4D {
                p = 132
            }
            var meta: DataSet?
            var syntax = TransferSyntax.implicitVRLittleEndian
            let startsWithMeta = count >= p + 8 && raw[p] == 0x02 && raw[p + 1] == 0x00
            if startsWithMeta {
                let (m, end) = try parseMeta(raw, source: source, from: p, path: path)
                meta = m
                p = end
                if let uid = m.string(.transferSyntaxUID), !uid.isEmpty {
                    syntax = TransferSyntax(uid: uid)
                }
            } else if p == 132 {
                throw DICOMError(.malformed("no file meta group after the DICM prefix"), file: path, offset: p)
            } else if count < 8 {
                throw DICOMError(.malformed("not a DICOM file (\(count) bytes)"), file: path, offset: 0)
            } else {
                // A bare data set (no preamble, no meta): accept it only if it starts like one,
                // with an element of group 0008 (or 0002), and take the encoding from that element.
                let le = UInt16(raw[0]) | UInt16(raw[1]) << 8, be = UInt16(raw[0]) << 8 | UInt16(raw[1])
                if le == 0x0008 || le == 0x0002 {
                    syntax = looksExplicit(raw, at: 0) ? .explicitVRLittleEndian : .implicitVRLittleEndian
                } else if be == 0x0008, looksExplicit(raw, at: 0) {
                    syntax = .explicitVRBigEndian
                } else {
                    throw DICOMError(.malformed("not a DICOM file (no DICM prefix and no data set start)"), file: path, offset: 0)
                }
            }

            if syntax.isDeflated {
                let inflated = try inflate(UnsafeRawBufferPointer(rebasing: raw[p...]), path: path, offset: p)
                let inner = ByteSource(inflated)
                let set = try inflated.withUnsafeBytes { body in
                    try DataSetParser(bytes: body, source: inner, explicitVR: true, bigEndian: false, file: path,
                                      stopAtPixelData: options.headerOnly, fileOffset: 0)
                        .parse(from: 0, to: body.count, delimited: false, depth: 0).0
                }
                return DICOMFile(path: path, meta: meta, transferSyntax: syntax, dataSet: set)
            }
            let parser = DataSetParser(bytes: raw, source: source, explicitVR: !syntax.isImplicitVR,
                                       bigEndian: syntax.isBigEndian, file: path,
                                       stopAtPixelData: options.headerOnly, fileOffset: 0)
            let (set, _) = try parser.parse(from: p, to: count, delimited: false, depth: 0)
            return DICOMFile(path: path, meta: meta, transferSyntax: syntax, dataSet: set)
        }
    }

    /// The file meta group: always Explicit VR Little Endian (PS3.10 §7.1).
    static func parseMeta(_ raw: UnsafeRawBufferPointer, source: ByteSource, from start: Int, path: String) throws -> (DataSet, Int) {
        let parser = DataSetParser(bytes: raw, source: source, explicitVR: true, bigEndian: false, file: path,
                                   stopAtPixelData: false, fileOffset: 0)
        // Find the end of group 0002 by walking element headers.
        var p = start
        while p + 8 <= raw.count, parser.u16(p) == 0x0002 {
            guard let vr = VR(bytes: raw[p + 4], raw[p + 5]) else {
                throw DICOMError(.malformed("file meta element without an explicit VR"), file: path, tag: parser.tag(p), offset: p)
            }
            let header = vr.hasLongLength ? 12 : 8
            guard p + header <= raw.count else { throw DICOMError(.truncated, file: path, tag: parser.tag(p), offset: p) }
            let length = vr.hasLongLength ? Int(parser.u32(p + 8)) : Int(parser.u16(p + 6))
            guard length != Int(DataSetParser.undefinedLength), p + header + length <= raw.count else {
                throw DICOMError(.truncated, file: path, tag: parser.tag(p), offset: p)
            }
            p += header + length
        }
        let (set, _) = try parser.parse(from: start, to: p, delimited: false, depth: 0)
        return (set, p)
    }

    static func looksExplicit(_ raw: UnsafeRawBufferPointer, at p: Int) -> Bool {
        VR(bytes: raw[p + 4], raw[p + 5]) != nil
    }

    /// Raw DEFLATE (RFC 1951) without a zlib header, as PS3.5 A.5 prescribes.
    static func inflate(_ input: UnsafeRawBufferPointer, path: String, offset: Int) throws -> Data {
        do {
            return try Zlib.inflate(input, format: .raw)
        } catch let e as Zlib.Error {
            throw DICOMError(e.reason.contains("truncated") ? .truncated : .codec("deflate stream: \(e.reason)"),
                             file: path, offset: offset + e.offset)
        }
    }
}
