import CCharLS
import COpenJPEG
import Foundation

/// Lossless encoders for one 16-bit monochrome frame, for the encapsulated transfer syntaxes Willis
/// writes (RLE Lossless, JPEG-LS Lossless, JPEG 2000 Lossless). They exist so that test and synthetic
/// series cover the syntaxes real archives hold; the codecs are Debian's CharLS and OpenJPEG, the same
/// libraries the decoders use.
public enum PixelEncoder {
    /// The syntaxes `encode` supports.
    public static let syntaxes: [TransferSyntax] = [.rleLossless, .jpegLSLossless, .jpeg2000Lossless]

    /// One frame's compressed bytes. `samples` are stored values (row-major, `rows × columns`),
    /// `signed` says whether they are two's complement (Pixel Representation 1).
    public static func encode(_ samples: [UInt16], rows: Int, columns: Int, signed: Bool, syntax: TransferSyntax) throws -> [UInt8] {
        guard samples.count == rows * columns, rows > 0, columns > 0 else {
            throw DICOMError(.malformed("\(samples.count) samples for \(rows)×\(columns)"))
        }
        switch syntax {
        case .rleLossless: return rle(samples, rows: rows, columns: columns)
        case .jpegLSLossless: return try jpegLS(samples, rows: rows, columns: columns)
        case .jpeg2000Lossless: return try jpeg2000(samples, rows: rows, columns: columns, signed: signed)
        default: throw DICOMError(.unsupported("encoding \(syntax.name)"))
        }
    }

    // MARK: - RLE (PS3.5 G.3): one segment per byte plane, most significant first, rows separately

    static func rle(_ samples: [UInt16], rows: Int, columns: Int) -> [UInt8] {
        var segments: [[UInt8]] = []
        for shift in [8, 0] {
            var segment: [UInt8] = []
            var row = [UInt8](repeating: 0, count: columns)
            for r in 0..<rows {
                for c in 0..<columns { row[c] = UInt8(truncatingIfNeeded: samples[r * columns + c] >> UInt16(shift)) }
                packBits(row, into: &segment)
            }
            if segment.count % 2 == 1 { segment.append(0) }
            segments.append(segment)
        }
        var out = [UInt8]()
        func u32(_ v: Int) { for s in stride(from: 0, to: 32, by: 8) { out.append(UInt8(truncatingIfNeeded: v >> s)) } }
        u32(segments.count)
        var offset = 64
        for i in 0..<15 {
            u32(i < segments.count ? offset : 0)
            if i < segments.count { offset += segments[i].count }
        }
        for s in segments { out += s }
        return out
    }

    /// PackBits: runs of 2–128 equal bytes as (257 − n, byte); everything else as literals of 1–128.
    static func packBits(_ bytes: [UInt8], into out: inout [UInt8]) {
        var i = 0
        var literalStart = 0
        func flushLiterals(upTo end: Int) {
            var s = literalStart
            while s < end {
                let n = min(128, end - s)
                out.append(UInt8(n - 1))
                out += bytes[s..<(s + n)]
                s += n
            }
        }
        while i < bytes.count {
            var run = 1
            while i + run < bytes.count && run < 128 && bytes[i + run] == bytes[i] { run += 1 }
            if run >= 2 {
                flushLiterals(upTo: i)
                out.append(UInt8(257 - run))
                out.append(bytes[i])
                i += run
                literalStart = i
            } else {
                i += 1
            }
        }
        flushLiterals(upTo: bytes.count)
    }

    // MARK: - JPEG-LS through CharLS

    static func jpegLS(_ samples: [UInt16], rows: Int, columns: Int) throws -> [UInt8] {
        guard let encoder = charls_jpegls_encoder_create() else { throw DICOMError(.codec("CharLS could not create an encoder")) }
        defer { charls_jpegls_encoder_destroy(encoder) }
        func check(_ e: charls_jpegls_errc, _ step: String) throws {
            guard e == CHARLS_JPEGLS_ERRC_SUCCESS else {
                let message = charls_get_error_message(e).map { String(cString: $0) } ?? "error \(e.rawValue)"
                throw DICOMError(.codec("JPEG-LS encode (\(step)): \(message)"))
            }
        }
        var info = charls_frame_info(width: UInt32(columns), height: UInt32(rows), bits_per_sample: 16, component_count: 1)
        try check(charls_jpegls_encoder_set_frame_info(encoder, &info), "frame info")
        try check(charls_jpegls_encoder_set_near_lossless(encoder, 0), "near lossless")
        var size = 0
        try check(charls_jpegls_encoder_get_estimated_destination_size(encoder, &size), "size")
        var out = [UInt8](repeating: 0, count: size)
        var written = 0
        try out.withUnsafeMutableBytes { dst in
            guard let base = dst.baseAddress else { throw DICOMError(.codec("JPEG-LS encode: no destination")) }
            try check(charls_jpegls_encoder_set_destination_buffer(encoder, base, dst.count), "destination")
            try samples.withUnsafeBytes { src in
                guard let source = src.baseAddress else { throw DICOMError(.codec("JPEG-LS encode: no samples")) }
                try check(charls_jpegls_encoder_encode_from_buffer(encoder, source, src.count, 0), "encode")
            }
            try check(charls_jpegls_encoder_get_bytes_written(encoder, &written), "bytes written")
        }
        out.removeSubrange(written...)
        if out.count % 2 == 1 { out.append(0) }
        return out
    }

    // MARK: - JPEG 2000 (reversible 5/3 wavelet, one quality layer) through OpenJPEG

    /// The growing output of OpenJPEG's write callbacks.
    final class Sink {
        var bytes: [UInt8] = []
        var position = 0
        var messages: [String] = []
    }

    static func jpeg2000(_ samples: [UInt16], rows: Int, columns: Int, signed: Bool) throws -> [UInt8] {
        var component = opj_image_cmptparm_t()
        component.dx = 1
        component.dy = 1
        component.w = UInt32(columns)
        component.h = UInt32(rows)
        component.prec = 16
        component.sgnd = signed ? 1 : 0
        guard let image = opj_image_create(1, &component, OPJ_CLRSPC_GRAY) else {
            throw DICOMError(.codec("OpenJPEG could not create an image"))
        }
        defer { opj_image_destroy(image) }
        image.pointee.x1 = UInt32(columns)
        image.pointee.y1 = UInt32(rows)
        guard let data = image.pointee.comps[0].data else { throw DICOMError(.codec("OpenJPEG image without data")) }
        for i in 0..<samples.count {
            data[i] = signed ? Int32(Int16(bitPattern: samples[i])) : Int32(samples[i])
        }
        guard let codec = opj_create_compress(OPJ_CODEC_J2K) else { throw DICOMError(.codec("OpenJPEG could not create an encoder")) }
        defer { opj_destroy_codec(codec) }
        let sink = Sink()
        return try withExtendedLifetime(sink) {
            let context = Unmanaged.passUnretained(sink).toOpaque()
            opj_set_error_handler(codec, { message, user in
                guard let message, let user else { return }
                Unmanaged<Sink>.fromOpaque(user).takeUnretainedValue().messages.append(
                    String(cString: message).trimmingCharacters(in: .newlines))
            }, context)
            var parameters = opj_cparameters_t()
            opj_set_default_encoder_parameters(&parameters)
            parameters.tcp_numlayers = 1
            parameters.tcp_rates.0 = 0  // lossless
            parameters.cp_disto_alloc = 1
            parameters.irreversible = 0
            // Each resolution level halves the image; OpenJPEG needs at least one pixel at the coarsest.
            var levels: Int32 = 1
            while levels < 6 && (min(rows, columns) >> Int(levels)) >= 1 { levels += 1 }
            parameters.numresolution = levels
            guard opj_setup_encoder(codec, &parameters, image) != 0, let stream = opj_stream_create(1 << 16, 0) else {
                throw DICOMError(.codec("OpenJPEG encoder setup failed: \(sink.messages.joined(separator: "; "))"))
            }
            defer { opj_stream_destroy(stream) }
            opj_stream_set_user_data(stream, context, nil)
            opj_stream_set_write_function(stream) { buffer, count, user in
                guard let buffer, let user else { return -1 }
                let s = Unmanaged<Sink>.fromOpaque(user).takeUnretainedValue()
                let n = Int(count)
                if s.position + n > s.bytes.count { s.bytes += [UInt8](repeating: 0, count: s.position + n - s.bytes.count) }
                s.bytes.withUnsafeMutableBytes { dst in
                    if let base = dst.baseAddress { (base + s.position).copyMemory(from: buffer, byteCount: n) }
                }
                s.position += n
                return count
            }
            opj_stream_set_skip_function(stream) { offset, user in
                guard let user else { return -1 }
                let s = Unmanaged<Sink>.fromOpaque(user).takeUnretainedValue()
                let target = s.position + Int(offset)
                guard target >= 0 else { return -1 }
                if target > s.bytes.count { s.bytes += [UInt8](repeating: 0, count: target - s.bytes.count) }
                s.position = target
                return offset
            }
            opj_stream_set_seek_function(stream) { offset, user in
                guard let user, offset >= 0 else { return 0 }
                let s = Unmanaged<Sink>.fromOpaque(user).takeUnretainedValue()
                if Int(offset) > s.bytes.count { s.bytes += [UInt8](repeating: 0, count: Int(offset) - s.bytes.count) }
                s.position = Int(offset)
                return 1
            }
            guard opj_start_compress(codec, image, stream) != 0, opj_encode(codec, stream) != 0, opj_end_compress(codec, stream) != 0 else {
                throw DICOMError(.codec("OpenJPEG encode failed: \(sink.messages.joined(separator: "; "))"))
            }
            var out = sink.bytes
            if out.count % 2 == 1 { out.append(0) }
            return out
        }
    }
}
