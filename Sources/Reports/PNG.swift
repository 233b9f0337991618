import Foundation
import Zlib

/// Minimal PNG encoder (8-bit grey or RGB, no interlace), after the PNG specification (ISO/IEC 15948).
public enum PNG {
    public static func encode(width: Int, height: Int, channels: Int, pixels: [UInt8]) throws -> Data {
        precondition(channels == 1 || channels == 3, "grey or RGB")
        precondition(pixels.count == width * height * channels, "pixels do not fill the image")
        var raw = [UInt8]()
        raw.reserveCapacity((width * channels + 1) * height)
        for y in 0..<height {
            raw.append(0)  // filter: none
            raw += pixels[(y * width * channels)..<((y + 1) * width * channels)]
        }
        let compressed = try raw.withUnsafeBytes { try Zlib.deflate($0, format: .zlib, level: 6) }
        var out = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        var header = Data()
        header.append(be32(UInt32(width)))
        header.append(be32(UInt32(height)))
        header.append(contentsOf: [8, channels == 1 ? 0 : 2, 0, 0, 0])
        chunk("IHDR", header, into: &out)
        chunk("IDAT", compressed, into: &out)
        chunk("IEND", Data(), into: &out)
        return out
    }

    static func be32(_ v: UInt32) -> Data { Data([UInt8(v >> 24), UInt8(truncatingIfNeeded: v >> 16), UInt8(truncatingIfNeeded: v >> 8), UInt8(truncatingIfNeeded: v)]) }

    static func chunk(_ type: String, _ body: Data, into out: inout Data) {
        out.append(be32(UInt32(body.count)))
        let typed = Data(type.utf8) + body
        out.append(typed)
        out.append(be32(Zlib.crc32(typed)))
    }
}
