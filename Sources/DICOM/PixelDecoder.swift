/// Decodes the pixel data of a file into a `PixelArray`, by transfer syntax.
public enum PixelDecoder {
    public static func decode(_ file: DICOMFile, options: ReadOptions = ReadOptions()) throws -> PixelArray {
        let set = file.dataSet
        let d = try PixelDescription(set, file: file.path, maxPixelBytes: options.maxPixelBytes)
        let syntax = file.transferSyntax
        let tag: Tag = set.contains(.pixelData) ? .pixelData : set.contains(.floatPixelData) ? .floatPixelData : .doubleFloatPixelData
        guard let element = set[tag] else { throw DICOMError(.notAnImage("no pixel data"), file: file.path) }
        if let fragments = element.fragments {
            let frames = try FrameSplitter.frames(fragments: fragments, set: set, count: d.frames, file: file.path)
            var out = PixelArray(frames: d.frames, rows: d.rows, columns: d.columns, samplesPerPixel: d.samplesPerPixel,
                                 type: d.sampleType, bytes: [UInt8](repeating: 0, count: d.frameBytes * d.frames))
            for (i, frame) in frames.enumerated() {
                let decoded: [UInt8]
                switch syntax {
                case .rleLossless: decoded = try RLEDecoder.decode(frame, d, file: file.path)
                case .jpegLSLossless, .jpegLSNearLossless: decoded = try JPEGLSDecoder.decode(frame, d, file: file.path)
                case .jpeg2000Lossless, .jpeg2000, .htj2kLossless, .htj2kLosslessRPCL, .htj2k:
                    decoded = try JPEG2000Decoder.decode(frame, d, file: file.path)
                case .jpegLossless, .jpegLosslessSV1: decoded = try JPEGLosslessDecoder.decode(frame, d, file: file.path)
                case .jpegBaseline, .jpegExtended: decoded = try JPEGBaselineDecoder.decode(frame, d, file: file.path)
                default:
                    throw DICOMError(.unsupported("transfer syntax \(syntax.name) (\(syntax.uid))"), file: file.path, tag: tag)
                }
                guard decoded.count == d.frameBytes else {
                    throw DICOMError(.codec("frame \(i) decoded to \(decoded.count) bytes, expected \(d.frameBytes)"), file: file.path, tag: tag)
                }
                out.bytes.replaceSubrange((i * d.frameBytes)..<((i + 1) * d.frameBytes), with: decoded)
            }
            return out
        }
        // 8-bit samples in an OW value of a big-endian file are stored in swapped byte pairs.
        let swapPairs = set.bigEndian && d.bitsAllocated == 8 && element.vr == .OW
        return try NativeDecoder.decode(set.source, range: element.range, d, bigEndian: set.bigEndian,
                                        swapBytePairs: swapPairs, file: file.path)
    }

    /// Writes frame `index` of `file`, times `slope` plus `intercept`, into `out` (rows × columns
    /// Float32). Uncompressed 16-bit grey-scale — most CT and MR — goes straight from the mapped
    /// file into `out` in one pass; everything else decodes through `decode`.
    public static func writeFrame(_ file: DICOMFile, frame index: Int, slope: Float, intercept: Float,
                                  into out: UnsafeMutableBufferPointer<Float>, options: ReadOptions = ReadOptions()) throws {
        let set = file.dataSet
        let d = try PixelDescription(set, file: file.path, maxPixelBytes: options.maxPixelBytes)
        if !file.transferSyntax.isEncapsulated, !set.bigEndian, let e = set[.pixelData], e.fragments == nil,
           d.samplesPerPixel == 1, d.bitsAllocated == 16, !d.floatingPoint, out.count == d.rows * d.columns {
            let n = d.rows * d.columns
            let start = e.range.lowerBound + index * n * 2
            guard index < d.frames, start + n * 2 <= e.range.upperBound else {
                throw DICOMError(.truncated, file: file.path, tag: .pixelData, offset: e.range.upperBound)
            }
            let shift = UInt16(16 - d.bitsStored)
            set.source.withBytes(start..<(start + n * 2)) { raw in
                // Loads are unaligned-safe: the value may start at any even or odd offset.
                if d.signed {
                    for i in 0..<n {
                        let v = UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                        out[i] = Float(Int16(bitPattern: v << shift) >> Int16(shift)) * slope + intercept
                    }
                } else {
                    for i in 0..<n {
                        let v = UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                        out[i] = Float((v << shift) >> shift) * slope + intercept
                    }
                }
            }
            return
        }
        let full = file.transferSyntax.isEncapsulated && set[.pixelData]?.fragments == nil
            ? try DICOMFile.read(file.path, options: options) : file
        let pixels = try decode(full, options: options)
        guard index < pixels.frames, pixels.rows * pixels.columns == out.count else {
            throw DICOMError(.malformed("frame \(index) of \(pixels.frames) frames of \(pixels.rows)×\(pixels.columns)"), file: file.path)
        }
        pixels.write(frame: index, slope: slope, intercept: intercept, into: out)
    }

    /// Masks each integer sample to `bitsStored` bits and sign-extends it when signed,
    /// in place over little-endian samples of `bitsAllocated` bits.
    static func fixUnusedBits(_ bytes: inout [UInt8], _ d: PixelDescription) {
        guard !d.floatingPoint, d.bitsStored < d.bitsAllocated else { return }
        let shift = d.bitsAllocated - d.bitsStored
        bytes.withUnsafeMutableBytes { raw in
            switch d.bitsAllocated {
            case 8:
                let p = raw.bindMemory(to: UInt8.self)
                for i in p.indices { p[i] = d.signed ? UInt8(bitPattern: Int8(bitPattern: p[i] << shift) >> shift) : (p[i] << shift) >> shift }
            case 16:
                let p = raw.bindMemory(to: UInt16.self)
                for i in p.indices { p[i] = d.signed ? UInt16(bitPattern: Int16(bitPattern: p[i] << shift) >> shift) : (p[i] << shift) >> shift }
            case 32:
                let p = raw.bindMemory(to: UInt32.self)
                for i in p.indices { p[i] = d.signed ? UInt32(bitPattern: Int32(bitPattern: p[i] << shift) >> shift) : (p[i] << shift) >> shift }
            default: break
            }
        }
    }
}

/// Uncompressed pixel data (PS3.5 §8.1).
enum NativeDecoder {
    static func decode(_ source: ByteSource, range: Range<Int>, _ d: PixelDescription, bigEndian: Bool,
                       swapBytePairs: Bool = false, file: String) throws -> PixelArray {
        let bytesPerSample = d.bitsAllocated / 8
        let ybr422 = d.photometric == "YBR_FULL_422" && d.samplesPerPixel == 3
        // YBR_FULL_422 stores two luminance samples per chroma pair: 2 samples per pixel on average.
        let storedFrameBytes = ybr422 ? d.rows * d.columns * 2 * bytesPerSample : d.frameBytes
        let needed = storedFrameBytes * d.frames
        guard range.count >= needed else {
            throw DICOMError(.truncated, file: file, tag: .pixelData, offset: range.lowerBound + range.count)
        }
        var out = [UInt8](repeating: 0, count: d.frameBytes * d.frames)
        // Read whole 16-bit words when pairs are swapped (an odd length ends in a pad byte).
        let readEnd = swapBytePairs ? min(range.upperBound, range.lowerBound + needed + needed % 2) : range.lowerBound + needed
        var swapped: [UInt8] = []
        if swapBytePairs {
            swapped = source.withBytes(range.lowerBound..<readEnd) { Array($0) }
            var i = 0
            while i + 1 < swapped.count { swapped.swapAt(i, i + 1); i += 2 }
        }
        func withSource(_ body: (UnsafeRawBufferPointer) -> Void) {
            if swapBytePairs {
                swapped.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[0..<needed])) }
            } else {
                source.withBytes(range.lowerBound..<(range.lowerBound + needed), body)
            }
        }
        withSource { src in
            out.withUnsafeMutableBytes { dst in
                for f in 0..<d.frames {
                    let s = UnsafeRawBufferPointer(rebasing: src[(f * storedFrameBytes)..<((f + 1) * storedFrameBytes)])
                    let o = UnsafeMutableRawBufferPointer(rebasing: dst[(f * d.frameBytes)..<((f + 1) * d.frameBytes)])
                    if ybr422 {
                        expand422(s, o, d, bytesPerSample: bytesPerSample)
                    } else if d.samplesPerPixel > 1 && d.planarConfiguration == 1 {
                        interleave(s, o, d, bytesPerSample: bytesPerSample, bigEndian: bigEndian)
                    } else {
                        copySamples(s, o, bytesPerSample: bytesPerSample, bigEndian: bigEndian)
                    }
                }
            }
        }
        PixelDecoder.fixUnusedBits(&out, d)
        return PixelArray(frames: d.frames, rows: d.rows, columns: d.columns, samplesPerPixel: d.samplesPerPixel,
                          type: d.sampleType, bytes: out)
    }

    static func copySamples(_ s: UnsafeRawBufferPointer, _ o: UnsafeMutableRawBufferPointer, bytesPerSample: Int, bigEndian: Bool) {
        guard bigEndian, bytesPerSample > 1 else {
            o.copyMemory(from: s)
            return
        }
        let n = s.count / bytesPerSample
        for i in 0..<n {
            for b in 0..<bytesPerSample { o[i * bytesPerSample + b] = s[i * bytesPerSample + bytesPerSample - 1 - b] }
        }
    }

    /// Planar configuration 1 (RRR…GGG…BBB) to interleaved (RGBRGB…).
    static func interleave(_ s: UnsafeRawBufferPointer, _ o: UnsafeMutableRawBufferPointer, _ d: PixelDescription,
                           bytesPerSample: Int, bigEndian: Bool) {
        let pixels = d.rows * d.columns
        let spp = d.samplesPerPixel
        for c in 0..<spp {
            for i in 0..<pixels {
                let from = (c * pixels + i) * bytesPerSample
                let to = (i * spp + c) * bytesPerSample
                for b in 0..<bytesPerSample {
                    o[to + b] = s[from + (bigEndian ? bytesPerSample - 1 - b : b)]
                }
            }
        }
    }

    /// YBR_FULL_422 (Y1 Y2 Cb Cr per pixel pair) to full YBR per pixel.
    static func expand422(_ s: UnsafeRawBufferPointer, _ o: UnsafeMutableRawBufferPointer, _ d: PixelDescription, bytesPerSample: Int) {
        let bps = bytesPerSample
        let pairs = d.rows * d.columns / 2
        for p in 0..<pairs {
            let src = p * 4 * bps
            for b in 0..<bps {
                let y1 = s[src + b], y2 = s[src + bps + b], cb = s[src + 2 * bps + b], cr = s[src + 3 * bps + b]
                let dst = p * 6 * bps
                o[dst + b] = y1; o[dst + bps + b] = cb; o[dst + 2 * bps + b] = cr
                o[dst + 3 * bps + b] = y2; o[dst + 4 * bps + b] = cb; o[dst + 5 * bps + b] = cr
            }
        }
    }
}
