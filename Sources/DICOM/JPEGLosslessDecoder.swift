/// JPEG Lossless, non-hierarchical (ITU-T T.81 process 14, Annex H), any
/// predictor 1–7 and point transform, Huffman-coded, one or more components
/// with 1×1 sampling, with restart intervals. Written in Swift.
enum JPEGLosslessDecoder {
    struct Huffman {
        // T.81 F.2.2.3: per code length, the largest code and the index of its first value.
        var maxCode = [Int](repeating: -1, count: 18)
        var valPtr = [Int](repeating: 0, count: 17)
        var minCode = [Int](repeating: 0, count: 17)
        var values: [UInt8] = []

        init(counts: [Int], values: [UInt8]) {
            self.values = values
            var code = 0, k = 0
            for length in 1...16 {
                valPtr[length] = k
                minCode[length] = code
                code += counts[length - 1]
                k += counts[length - 1]
                maxCode[length] = counts[length - 1] > 0 ? code - 1 : -1
                code <<= 1
            }
            maxCode[17] = Int.max
        }
    }

    struct BitReader {
        let data: [UInt8]
        var position: Int
        var buffer: UInt32 = 0
        var count = 0
        /// Set when a marker is reached; bits after it read as zeros.
        var marker: UInt8?

        init(_ data: [UInt8], at position: Int) {
            self.data = data
            self.position = position
        }

        mutating func bit() throws -> Int {
            if count == 0 {
                var byte: UInt8 = 0
                if marker == nil {
                    guard position < data.count else { throw JPEGError.truncated }
                    byte = data[position]
                    if byte == 0xFF {
                        guard position + 1 < data.count else { throw JPEGError.truncated }
                        let next = data[position + 1]
                        if next == 0x00 {
                            position += 2
                        } else {
                            marker = next
                            byte = 0
                        }
                    } else {
                        position += 1
                    }
                }
                buffer = UInt32(byte)
                count = 8
            }
            count -= 1
            return Int(buffer >> UInt32(count)) & 1
        }

        mutating func bits(_ n: Int) throws -> Int {
            var v = 0
            for _ in 0..<n { v = v << 1 | (try bit()) }
            return v
        }

        /// Skips to the byte after the next RSTn marker.
        mutating func restart() throws {
            count = 0
            if marker == nil {
                while position + 1 < data.count && !(data[position] == 0xFF && (0xD0...0xD7).contains(data[position + 1])) {
                    position += 1
                }
                guard position + 1 < data.count else { throw JPEGError.malformed("missing restart marker") }
                position += 2
            } else if let m = marker, (0xD0...0xD7).contains(m) {
                position += 2
                marker = nil
            } else {
                throw JPEGError.malformed("expected a restart marker")
            }
        }
    }

    enum JPEGError: Error { case truncated, malformed(String), unsupported(String) }

    static func decode(_ frame: [UInt8], _ d: PixelDescription, file: String) throws -> [UInt8] {
        do {
            return try decodeImage(frame, d)
        } catch let e as JPEGError {
            switch e {
            case .truncated: throw DICOMError(.truncated, file: file, tag: .pixelData)
            case let .malformed(m): throw DICOMError(.codec("JPEG lossless: \(m)"), file: file, tag: .pixelData)
            case let .unsupported(m): throw DICOMError(.unsupported("JPEG lossless: \(m)"), file: file, tag: .pixelData)
            }
        }
    }

    static func decodeImage(_ data: [UInt8], _ d: PixelDescription) throws -> [UInt8] {
        var tables: [Int: Huffman] = [:]
        var precision = 0, width = 0, height = 0
        var componentIDs: [Int] = []
        var restartInterval = 0
        var p = 0
        func u16(_ i: Int) throws -> Int {
            guard i + 1 < data.count else { throw JPEGError.truncated }
            return Int(data[i]) << 8 | Int(data[i + 1])
        }
        guard data.count >= 4, data[0] == 0xFF, data[1] == 0xD8 else { throw JPEGError.malformed("no SOI marker") }
        p = 2
        while true {
            // Markers may be preceded by fill bytes 0xFF.
            while p < data.count && data[p] == 0xFF && p + 1 < data.count && data[p + 1] == 0xFF { p += 1 }
            guard p + 3 < data.count, data[p] == 0xFF else { throw JPEGError.malformed("expected a marker at byte \(p)") }
            let marker = data[p + 1]
            let length = try u16(p + 2)
            let body = p + 4
            guard body + length - 2 <= data.count else { throw JPEGError.truncated }
            switch marker {
            case 0xC3:  // SOF3: lossless, Huffman
                precision = Int(data[body])
                height = try u16(body + 1)
                width = try u16(body + 3)
                let n = Int(data[body + 5])
                guard length >= 8 + 3 * n else { throw JPEGError.truncated }
                for c in 0..<n {
                    componentIDs.append(Int(data[body + 6 + 3 * c]))
                    guard data[body + 7 + 3 * c] == 0x11 else { throw JPEGError.unsupported("subsampled components") }
                }
            case 0xC0, 0xC1, 0xC2, 0xC5...0xC7, 0xC9...0xCB, 0xCD...0xCF:
                throw JPEGError.unsupported("not a lossless Huffman JPEG (SOF marker FF\(String(marker, radix: 16, uppercase: true)))")
            case 0xC4:  // DHT
                var q = body
                while q < body + length - 2 {
                    guard q + 17 <= data.count else { throw JPEGError.truncated }
                    let id = Int(data[q])
                    let counts = (0..<16).map { Int(data[q + 1 + $0]) }
                    let total = counts.reduce(0, +)
                    guard q + 17 + total <= data.count else { throw JPEGError.truncated }
                    tables[id] = Huffman(counts: counts, values: Array(data[(q + 17)..<(q + 17 + total)]))
                    q += 17 + total
                }
            case 0xDD:  // DRI
                restartInterval = try u16(body)
            case 0xDA:  // SOS
                guard width > 0, height > 0 else { throw JPEGError.malformed("scan before frame header") }
                let ns = Int(data[body])
                guard length >= 6 + 2 * ns else { throw JPEGError.truncated }
                var scanTables: [Huffman] = []
                for c in 0..<ns {
                    let td = Int(data[body + 2 + 2 * c] >> 4)
                    guard let t = tables[td] else { throw JPEGError.malformed("missing Huffman table \(td)") }
                    scanTables.append(t)
                }
                let predictor = Int(data[body + 1 + 2 * ns])
                let pointTransform = Int(data[body + 3 + 2 * ns] & 0x0F)
                guard ns == componentIDs.count else { throw JPEGError.unsupported("\(ns) of \(componentIDs.count) components in one scan") }
                guard width == d.columns, height == d.rows, ns == d.samplesPerPixel else {
                    throw JPEGError.malformed("image is \(width)×\(height)×\(ns), header says \(d.columns)×\(d.rows)×\(d.samplesPerPixel)")
                }
                return try decodeScan(data, from: body + length - 2, tables: scanTables, width: width, height: height,
                                      precision: precision, predictor: predictor, pointTransform: pointTransform,
                                      restartInterval: restartInterval, d: d)
            case 0xD9:
                throw JPEGError.malformed("no scan before EOI")
            default:
                break  // APPn, COM, DQT and others carry nothing lossless decoding needs
            }
            p = body + length - 2
        }
    }

    static func decodeScan(_ data: [UInt8], from start: Int, tables: [Huffman], width: Int, height: Int, precision: Int,
                           predictor: Int, pointTransform: Int, restartInterval: Int, d: PixelDescription) throws -> [UInt8] {
        guard (1...7).contains(predictor) else { throw JPEGError.unsupported("predictor \(predictor)") }
        guard (2...16).contains(precision) else { throw JPEGError.unsupported("precision \(precision)") }
        let nc = tables.count
        var reader = BitReader(data, at: start)
        var samples = [Int32](repeating: 0, count: width * height * nc)
        let mask = (1 << precision) - 1
        let initial = 1 << (precision - pointTransform - 1)
        var intervalStart = 0
        var mcusLeft = restartInterval

        func decodeDifference(_ t: Huffman) throws -> Int {
            var code = try reader.bit()
            var length = 1
            while code > t.maxCode[length] {
                code = code << 1 | (try reader.bit())
                length += 1
                guard length <= 16 else { throw JPEGError.malformed("bad Huffman code") }
            }
            let index = t.valPtr[length] + code - t.minCode[length]
            guard index < t.values.count else { throw JPEGError.malformed("bad Huffman code") }
            let ssss = Int(t.values[index])
            if ssss == 0 { return 0 }
            if ssss == 16 { return 32768 }
            let v = try reader.bits(ssss)
            return v < (1 << (ssss - 1)) ? v - (1 << ssss) + 1 : v
        }

        for pixel in 0..<(width * height) {
            if restartInterval > 0 {
                if mcusLeft == 0 {
                    try reader.restart()
                    intervalStart = pixel
                    mcusLeft = restartInterval
                }
                mcusLeft -= 1
            }
            let x = pixel % width
            let sinceRestart = pixel - intervalStart
            for c in 0..<nc {
                let i = pixel * nc + c
                let prediction: Int
                if sinceRestart == 0 {
                    prediction = initial
                } else if sinceRestart < width {
                    prediction = Int(samples[i - nc])  // first line of the interval: Ra
                } else if x == 0 {
                    prediction = Int(samples[i - width * nc])  // first column: Rb
                } else {
                    let ra = Int(samples[i - nc]), rb = Int(samples[i - width * nc]), rc = Int(samples[i - width * nc - nc])
                    switch predictor {
                    case 1: prediction = ra
                    case 2: prediction = rb
                    case 3: prediction = rc
                    case 4: prediction = ra + rb - rc
                    case 5: prediction = ra + ((rb - rc) >> 1)
                    case 6: prediction = rb + ((ra - rc) >> 1)
                    default: prediction = (ra + rb) >> 1
                    }
                }
                samples[i] = Int32((prediction + (try decodeDifference(tables[c]))) & 0xFFFF)
            }
        }
        let bps = d.bitsAllocated / 8
        var out = [UInt8](repeating: 0, count: d.frameBytes)
        for (i, s) in samples.enumerated() {
            let v = (Int(s) << pointTransform) & mask
            for b in 0..<bps { out[i * bps + b] = UInt8(truncatingIfNeeded: v >> (8 * b)) }
        }
        PixelDecoder.fixUnusedBits(&out, d)
        return out
    }
}
