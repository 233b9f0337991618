import CSystemZlib
import Foundation

/// Whole-buffer DEFLATE streams through Debian's zlib: raw (DICOM's Deflated transfer
/// syntax, PS3.5 A.5) or gzip-wrapped (.nii.gz).
public enum Zlib {
    public enum Format: Sendable {
        /// RFC 1951 with no header.
        case raw
        /// RFC 1952.
        case gzip
        /// RFC 1950 (PNG's IDAT).
        case zlib

        var windowBits: Int32 {
            switch self {
            case .raw: return -MAX_WBITS
            case .gzip: return 16 + MAX_WBITS
            case .zlib: return MAX_WBITS
            }
        }
    }

    public struct Error: Swift.Error, CustomStringConvertible, Equatable {
        public var reason: String
        /// Bytes of input consumed when it failed.
        public var offset: Int
        public var description: String { reason }
    }

    /// Inflates `input`; stops with an error past `maxBytes` of output.
    public static func inflate(_ input: UnsafeRawBufferPointer, format: Format, maxBytes: Int = .max) throws -> Data {
        var stream = z_stream()
        guard inflateInit2_(&stream, format.windowBits, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw Error(reason: "zlib inflateInit2 failed", offset: 0)
        }
        defer { inflateEnd(&stream) }
        stream.next_in = UnsafeMutablePointer(mutating: input.bindMemory(to: Bytef.self).baseAddress)
        stream.avail_in = uInt(input.count)
        return try pump(&stream, finish: false, maxBytes: maxBytes) { CSystemZlib.inflate(&$0, Z_NO_FLUSH) }
    }

    /// Deflates `input` (level 1: these files are written often and read once).
    public static func deflate(_ input: UnsafeRawBufferPointer, format: Format, level: Int32 = 1) throws -> Data {
        var stream = z_stream()
        guard deflateInit2_(&stream, level, Z_DEFLATED, format.windowBits, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION,
                            Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw Error(reason: "zlib deflateInit2 failed", offset: 0)
        }
        defer { deflateEnd(&stream) }
        stream.next_in = UnsafeMutablePointer(mutating: input.bindMemory(to: Bytef.self).baseAddress)
        stream.avail_in = uInt(input.count)
        return try pump(&stream, finish: true, maxBytes: .max) { CSystemZlib.deflate(&$0, Z_FINISH) }
    }

    /// CRC-32 (as in gzip and PNG).
    public static func crc32(_ data: Data) -> UInt32 {
        data.withUnsafeBytes { UInt32(CSystemZlib.crc32(0, $0.bindMemory(to: Bytef.self).baseAddress, uInt($0.count))) }
    }

    /// Runs `step` until the stream ends, collecting output in 1 MB chunks.
    static func pump(_ stream: inout z_stream, finish: Bool, maxBytes: Int,
                     _ step: (inout z_stream) -> Int32) throws -> Data {
        var out = Data()
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        var status: Int32 = Z_OK
        while status != Z_STREAM_END {
            status = chunk.withUnsafeMutableBufferPointer { buf -> Int32 in
                stream.next_out = buf.baseAddress
                stream.avail_out = uInt(buf.count)
                let s = step(&stream)
                if let base = buf.baseAddress { out.append(base, count: buf.count - Int(stream.avail_out)) }
                return s
            }
            if status == Z_BUF_ERROR && stream.avail_in == 0 && !finish {
                throw Error(reason: "compressed stream is truncated", offset: Int(stream.total_in))
            }
            guard status == Z_OK || status == Z_STREAM_END else {
                throw Error(reason: "compressed stream is corrupt (zlib \(status))", offset: Int(stream.total_in))
            }
            guard out.count <= maxBytes else {
                throw Error(reason: "decompressed size exceeds the limit of \(maxBytes) bytes", offset: Int(stream.total_in))
            }
        }
        return out
    }
}
