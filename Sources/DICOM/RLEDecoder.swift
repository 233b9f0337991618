/// RLE Lossless (PS3.5 Annex G): a 64-byte header of segment offsets, then one
/// PackBits segment per byte plane, most significant byte first, per sample.
enum RLEDecoder {
    static func decode(_ frame: [UInt8], _ d: PixelDescription, file: String) throws -> [UInt8] {
        let bps = d.bitsAllocated / 8
        let pixels = d.rows * d.columns
        let expectedSegments = bps * d.samplesPerPixel
        guard frame.count >= 64 else { throw DICOMError(.truncated, file: file, tag: .pixelData) }
        func u32(_ i: Int) -> Int {
            Int(frame[i]) | Int(frame[i + 1]) << 8 | Int(frame[i + 2]) << 16 | Int(frame[i + 3]) << 24
        }
        let segmentCount = u32(0)
        guard segmentCount == expectedSegments else {
            throw DICOMError(.malformed("RLE frame has \(segmentCount) segments, expected \(expectedSegments)"), file: file, tag: .pixelData)
        }
        var offsets = (0..<segmentCount).map { u32(4 + 4 * $0) }
        offsets.append(frame.count)
        var out = [UInt8](repeating: 0, count: d.frameBytes)
        for s in 0..<segmentCount {
            let start = offsets[s], end = offsets[s + 1]
            guard start >= 64, start <= end, end <= frame.count else {
                throw DICOMError(.malformed("RLE segment \(s) offsets out of range"), file: file, tag: .pixelData)
            }
            let sample = s / bps
            // Segment 0 of a sample is its most significant byte; output is little-endian.
            let byteInSample = bps - 1 - (s % bps)
            var p = start, n = 0
            while n < pixels, p < end {
                let control = Int8(bitPattern: frame[p]); p += 1
                if control >= 0 {
                    let run = Int(control) + 1
                    guard p + run <= end else { throw DICOMError(.truncated, file: file, tag: .pixelData) }
                    for k in 0..<min(run, pixels - n) { out[((n + k) * d.samplesPerPixel + sample) * bps + byteInSample] = frame[p + k] }
                    p += run; n += run
                } else if control != -128 {
                    let run = 1 - Int(control)
                    guard p < end else { throw DICOMError(.truncated, file: file, tag: .pixelData) }
                    let v = frame[p]; p += 1
                    for k in 0..<min(run, pixels - n) { out[((n + k) * d.samplesPerPixel + sample) * bps + byteInSample] = v }
                    n += run
                }
            }
            guard n >= pixels else {
                throw DICOMError(.malformed("RLE segment \(s) decodes to \(n) of \(pixels) bytes"), file: file, tag: .pixelData)
            }
        }
        PixelDecoder.fixUnusedBits(&out, d)
        return out
    }
}
