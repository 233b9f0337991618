import CTurboJPEG

/// JPEG Baseline and 8-bit Extended (ITU-T T.81 processes 1, 2, 4) through Debian's
/// libjpeg-turbo (TurboJPEG API). Components are returned as stored (no colour conversion),
/// chroma upsampled with libjpeg's "fancy" triangular filter, as pydicom returns them.
enum JPEGBaselineDecoder {
    static func decode(_ frame: [UInt8], _ d: PixelDescription, file: String) throws -> [UInt8] {
        guard d.bitsAllocated == 8 else {
            throw DICOMError(.unsupported("\(d.bitsAllocated)-bit JPEG Extended (only 8-bit is decoded)"), file: file, tag: .pixelData)
        }
        guard let handle = tjInitDecompress() else {
            throw DICOMError(.codec("TurboJPEG could not create a decoder"), file: file, tag: .pixelData)
        }
        defer { tjDestroy(handle) }
        func fail(_ step: String) -> DICOMError {
            let message = tjGetErrorStr2(handle).map { String(cString: $0) } ?? "unknown error"
            return DICOMError(.codec("JPEG \(step): \(message)"), file: file, tag: .pixelData)
        }
        return try frame.withUnsafeBufferPointer { src -> [UInt8] in
            guard let base = src.baseAddress else { throw DICOMError(.truncated, file: file, tag: .pixelData) }
            var width: Int32 = 0, height: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = 0
            guard tjDecompressHeader3(handle, base, UInt(src.count), &width, &height, &subsampling, &colorspace) == 0 else {
                throw fail("header")
            }
            guard Int(width) == d.columns, Int(height) == d.rows else {
                throw DICOMError(.codec("JPEG is \(width)×\(height), header says \(d.columns)×\(d.rows)"), file: file, tag: .pixelData)
            }
            let (w, h) = (Int(width), Int(height))
            var out = [UInt8](repeating: 0, count: d.frameBytes)
            if d.samplesPerPixel == 1 {
                try out.withUnsafeMutableBufferPointer { o in
                    guard tjDecompress2(handle, base, UInt(src.count), o.baseAddress, width, 0, height, Int32(TJPF_GRAY.rawValue), Int32(TJFLAG_ACCURATEDCT)) == 0 else {
                        throw fail("decode")
                    }
                }
                return out
            }
            guard d.samplesPerPixel == 3 else { throw DICOMError(.unsupported("\(d.samplesPerPixel)-sample JPEG"), file: file, tag: .pixelData) }
            if colorspace == Int32(TJCS_YCbCr.rawValue) {
                // Components as stored: the object's PhotometricInterpretation, not libjpeg's guess
                // from markers, says what they are (some RGB encoders write a truncated Adobe marker
                // that makes libjpeg assume YCbCr). Raw planes, then libjpeg's upsampling of chroma.
                let widths = (0..<3).map { Int(tjPlaneWidth(Int32($0), width, subsampling)) }
                let heights = (0..<3).map { Int(tjPlaneHeight(Int32($0), height, subsampling)) }
                guard widths.allSatisfy({ $0 > 0 }), heights.allSatisfy({ $0 > 0 }) else { throw fail("plane sizes") }
                // One buffer holds the three planes back to back.
                let offsets = [0, widths[0] * heights[0], widths[0] * heights[0] + widths[1] * heights[1]]
                var buffer = [UInt8](repeating: 0, count: offsets[2] + widths[2] * heights[2])
                var strides = widths.map { Int32($0) }
                try buffer.withUnsafeMutableBufferPointer { b in
                    guard let start = b.baseAddress else { return }
                    var pointers: [UnsafeMutablePointer<UInt8>?] = offsets.map { start + $0 }
                    guard tjDecompressToYUVPlanes(handle, base, UInt(src.count), &pointers, width, &strides, height,
                                                  Int32(TJFLAG_ACCURATEDCT)) == 0 else { throw fail("decode") }
                }
                let planes = (0..<3).map { Array(buffer[offsets[$0]..<(offsets[$0] + widths[$0] * heights[$0])]) }
                let chroma = (1...2).map { upsample(planes[$0], width: widths[$0], height: heights[$0], to: w, h) }
                for i in 0..<(w * h) {
                    out[3 * i] = planes[0][(i / w) * widths[0] + i % w]
                    out[3 * i + 1] = chroma[0][i]
                    out[3 * i + 2] = chroma[1][i]
                }
                return out
            }
            // RGB colour space: libjpeg applies no conversion.
            try out.withUnsafeMutableBufferPointer { o in
                guard tjDecompress2(handle, base, UInt(src.count), o.baseAddress, width, 0, height, Int32(TJPF_RGB.rawValue), Int32(TJFLAG_ACCURATEDCT)) == 0 else {
                    throw fail("decode")
                }
            }
            return out
        }
    }

    /// Chroma plane of `width`×`height` to `w`×`h` with libjpeg's fancy upsampling
    /// (h2v1: 3:1 triangle along rows; h2v2: 3:1 triangle along rows and columns).
    static func upsample(_ plane: [UInt8], width: Int, height: Int, to w: Int, _ h: Int) -> [UInt8] {
        if width >= w && height >= h {
            return (0..<(w * h)).map { plane[($0 / w) * width + $0 % w] }
        }
        let fx = (w + width - 1) / width, fy = (h + height - 1) / height
        func at(_ x: Int, _ y: Int) -> Int { Int(plane[min(max(y, 0), height - 1) * width + min(max(x, 0), width - 1)]) }
        var out = [UInt8](repeating: 0, count: w * h)
        for y in 0..<h {
            for x in 0..<w {
                let cx = x / fx, cy = y / fy
                var value: Int
                if fx == 2 && fy == 1 {
                    if width == 1 { value = at(0, cy) }
                    else if x % 2 == 0 { value = cx == 0 ? at(0, cy) : (3 * at(cx, cy) + at(cx - 1, cy) + 1) >> 2 }
                    else { value = cx == width - 1 ? at(cx, cy) : (3 * at(cx, cy) + at(cx + 1, cy) + 2) >> 2 }
                } else if fx == 2 && fy == 2 {
                    let other = y % 2 == 0 ? cy - 1 : cy + 1
                    let colsum = { (c: Int) in 3 * at(c, cy) + at(c, other) }
                    let this = colsum(cx)
                    if width == 1 { value = (this * 4 + 8) >> 4 }
                    else if x % 2 == 0 { value = cx == 0 ? (this * 4 + 8) >> 4 : (this * 3 + colsum(cx - 1) + 8) >> 4 }
                    else { value = cx == width - 1 ? (this * 4 + 7) >> 4 : (this * 3 + colsum(cx + 1) + 7) >> 4 }
                } else {
                    value = at(cx, cy)  // other factors: replicate
                }
                out[y * w + x] = UInt8(clamping: value)
            }
        }
        return out
    }
}
