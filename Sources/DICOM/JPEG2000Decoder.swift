import COpenJPEG

/// JPEG 2000 (ISO 15444-1, and HTJ2K where the library supports it) through
/// OpenJPEG, Debian's libopenjp2, reading from memory.
enum JPEG2000Decoder {
    /// The read position over one frame's bytes, handed to OpenJPEG's callbacks.
    final class Cursor {
        let bytes: UnsafeRawBufferPointer
        var position = 0
        var messages: [String] = []
        init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }
    }

    static func decode(_ frame: [UInt8], _ d: PixelDescription, file: String) throws -> [UInt8] {
        try frame.withUnsafeBytes { whole -> [UInt8] in
            // DICOM holds a bare codestream, but some writers wrap it in a JP2 file; decode the
            // codestream inside (from its SOC+SIZ markers) so OpenJPEG never parses JP2 boxes.
            var start = 0
            if whole.count >= 12 && whole[4] == 0x6A && whole[5] == 0x50 && whole[6] == 0x20 && whole[7] == 0x20 {
                guard let soc = (0..<max(0, whole.count - 3)).first(where: {
                    whole[$0] == 0xFF && whole[$0 + 1] == 0x4F && whole[$0 + 2] == 0xFF && whole[$0 + 3] == 0x51
                }) else {
                    throw DICOMError(.codec("JPEG 2000 file without a codestream"), file: file, tag: .pixelData)
                }
                start = soc
            }
            let src = UnsafeRawBufferPointer(rebasing: whole[start...])
            let cursor = Cursor(src)
            // OpenJPEG reaches the cursor only through an unretained pointer: keep it alive
            // until the codec is done, or an optimised build may free it mid-decode.
            return try withExtendedLifetime(cursor) { try decode(src, cursor, d, file: file) }
        }
    }

    static func decode(_ src: UnsafeRawBufferPointer, _ cursor: Cursor, _ d: PixelDescription, file: String) throws -> [UInt8] {
        guard let codec = opj_create_decompress(OPJ_CODEC_J2K) else {
            throw DICOMError(.codec("OpenJPEG could not create a decoder"), file: file, tag: .pixelData)
        }
        defer { opj_destroy_codec(codec) }
        let context = Unmanaged.passUnretained(cursor).toOpaque()
        opj_set_error_handler(codec, { message, user in
            guard let message, let user else { return }
            Unmanaged<Cursor>.fromOpaque(user).takeUnretainedValue().messages.append(
                String(cString: message).trimmingCharacters(in: .newlines))
        }, context)
        var parameters = opj_dparameters_t()
        opj_set_default_decoder_parameters(&parameters)
        guard opj_setup_decoder(codec, &parameters) != 0, let stream = opj_stream_create(1 << 16, 1) else {
            throw DICOMError(.codec("OpenJPEG setup failed"), file: file, tag: .pixelData)
        }
        defer { opj_stream_destroy(stream) }
        opj_stream_set_user_data(stream, context, nil)
        opj_stream_set_user_data_length(stream, UInt64(src.count))
        opj_stream_set_read_function(stream) { buffer, count, user in
            // End of stream is (OPJ_SIZE_T)-1; size_t imports as Int, so that is -1 here, not Int.max
            // (returning Int.max made OpenJPEG copy past its buffer: a fuzz finding).
            guard let buffer, let user else { return -1 }
            let c = Unmanaged<Cursor>.fromOpaque(user).takeUnretainedValue()
            let n = min(Int(clamping: count), c.bytes.count - c.position)
            guard n > 0, let source = c.bytes.baseAddress else { return -1 }
            buffer.copyMemory(from: source + c.position, byteCount: n)
            c.position += n
            return OPJ_SIZE_T(n)
        }
        // Skips and seeks outside the codestream fail (-1 / false), as OpenJPEG's own file stream does.
        opj_stream_set_skip_function(stream) { n, user in
            guard let user else { return -1 }
            let c = Unmanaged<Cursor>.fromOpaque(user).takeUnretainedValue()
            guard n >= -OPJ_OFF_T(c.position), n <= OPJ_OFF_T(c.bytes.count - c.position) else { return -1 }
            c.position += Int(n)
            return n
        }
        opj_stream_set_seek_function(stream) { n, user in
            guard let user else { return 0 }
            let c = Unmanaged<Cursor>.fromOpaque(user).takeUnretainedValue()
            guard n >= 0, n <= OPJ_OFF_T(c.bytes.count) else { return 0 }
            c.position = Int(n)
            return 1
        }
        var imagePointer: UnsafeMutablePointer<opj_image_t>?
        func failure(_ step: String) -> DICOMError {
            DICOMError(.codec("JPEG 2000 \(step): \(cursor.messages.joined(separator: "; "))"), file: file, tag: .pixelData)
        }
        guard opj_read_header(stream, codec, &imagePointer) != 0, let image = imagePointer else { throw failure("header") }
        defer { opj_image_destroy(image) }
        guard opj_decode(codec, stream, image) != 0, opj_end_decompress(codec, stream) != 0 else { throw failure("decode") }
        let n = Int(image.pointee.numcomps)
        guard n == d.samplesPerPixel, let comps = image.pointee.comps else {
            throw DICOMError(.codec("JPEG 2000 image has \(n) components, header says \(d.samplesPerPixel)"), file: file, tag: .pixelData)
        }
        let bps = d.bitsAllocated / 8
        var out = [UInt8](repeating: 0, count: d.frameBytes)
        var codestreamSigned = true
        for c in 0..<n {
            let comp = comps[c]
            guard Int(comp.w) == d.columns, Int(comp.h) == d.rows, let data = comp.data else {
                throw DICOMError(.codec("JPEG 2000 component \(c) is \(comp.w)×\(comp.h), header says \(d.columns)×\(d.rows)"),
                                 file: file, tag: .pixelData)
            }
            if comp.sgnd == 0 { codestreamSigned = false }
            out.withUnsafeMutableBytes { o in
                for i in 0..<(d.rows * d.columns) {
                    let v = UInt32(bitPattern: data[i])
                    let at = (i * n + c) * bps
                    for b in 0..<bps { o[at + b] = UInt8(truncatingIfNeeded: v >> (8 * b)) }
                }
            }
        }
        // An unsigned codestream for signed pixels: reinterpret its top stored bit as the sign, as pydicom does.
        if d.signed && !codestreamSigned { PixelDecoder.fixUnusedBits(&out, d) }
        return out
    }
}
