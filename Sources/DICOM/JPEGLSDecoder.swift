import CCharLS

/// JPEG-LS (ISO 14495-1) through CharLS, Debian's libcharls.
enum JPEGLSDecoder {
    static func decode(_ frame: [UInt8], _ d: PixelDescription, file: String) throws -> [UInt8] {
        guard let decoder = charls_jpegls_decoder_create() else {
            throw DICOMError(.codec("CharLS could not create a decoder"), file: file, tag: .pixelData)
        }
        defer { charls_jpegls_decoder_destroy(decoder) }
        func check(_ e: charls_jpegls_errc, _ step: String) throws {
            guard e == CHARLS_JPEGLS_ERRC_SUCCESS else {
                let message = charls_get_error_message(e).map { String(cString: $0) } ?? "error \(e.rawValue)"
                throw DICOMError(.codec("JPEG-LS \(step): \(message)"), file: file, tag: .pixelData)
            }
        }
        return try frame.withUnsafeBytes { src -> [UInt8] in
            guard let base = src.baseAddress else { throw DICOMError(.truncated, file: file, tag: .pixelData) }
            try check(charls_jpegls_decoder_set_source_buffer(decoder, base, src.count), "source")
            try check(charls_jpegls_decoder_read_header(decoder), "header")
            var info = charls_frame_info()
            try check(charls_jpegls_decoder_get_frame_info(decoder, &info), "frame info")
            guard Int(info.width) == d.columns, Int(info.height) == d.rows, Int(info.component_count) == d.samplesPerPixel else {
                throw DICOMError(.codec("JPEG-LS frame is \(info.width)×\(info.height)×\(info.component_count), header says \(d.columns)×\(d.rows)×\(d.samplesPerPixel)"),
                                 file: file, tag: .pixelData)
            }
            let bytesPerSample = info.bits_per_sample > 8 ? 2 : 1
            guard bytesPerSample == d.bitsAllocated / 8 else {
                throw DICOMError(.codec("JPEG-LS \(info.bits_per_sample)-bit samples in \(d.bitsAllocated)-bit pixels"), file: file, tag: .pixelData)
            }
            var size = 0
            try check(charls_jpegls_decoder_get_destination_size(decoder, 0, &size), "size")
            guard size == d.frameBytes else {
                throw DICOMError(.codec("JPEG-LS destination \(size) bytes, expected \(d.frameBytes)"), file: file, tag: .pixelData)
            }
            var out = [UInt8](repeating: 0, count: size)
            try out.withUnsafeMutableBytes { dst in
                guard let target = dst.baseAddress else { return }
                try check(charls_jpegls_decoder_decode_to_buffer(decoder, target, dst.count, 0), "decode")
            }
            var mode = CHARLS_INTERLEAVE_MODE_NONE
            try check(charls_jpegls_decoder_get_interleave_mode(decoder, &mode), "interleave mode")
            if d.samplesPerPixel > 1 && mode == CHARLS_INTERLEAVE_MODE_NONE {
                // CharLS returns one plane per component for non-interleaved scans.
                var planar = d
                planar.planarConfiguration = 1
                var interleaved = [UInt8](repeating: 0, count: size)
                out.withUnsafeBytes { s in
                    interleaved.withUnsafeMutableBytes { o in
                        NativeDecoder.interleave(s, o, planar, bytesPerSample: bytesPerSample, bigEndian: false)
                    }
                }
                out = interleaved
            }
            PixelDecoder.fixUnusedBits(&out, d)
            return out
        }
    }
}
