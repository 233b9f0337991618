/// Splits encapsulated pixel data into one byte string per frame (PS3.5 A.4):
/// by the Extended Offset Table, the Basic Offset Table, one fragment per frame,
/// or, failing those, at the end-of-image markers of the JPEG family.
enum FrameSplitter {
    static func frames(fragments: [Range<Int>], set: DataSet, count: Int, file: String) throws -> [[UInt8]] {
        let source = set.source
        guard let bot = fragments.first else {
            throw DICOMError(.malformed("encapsulated pixel data without a Basic Offset Table item"), file: file, tag: .pixelData)
        }
        let data = Array(fragments.dropFirst())
        guard !data.isEmpty else { throw DICOMError(.malformed("encapsulated pixel data without fragments"), file: file, tag: .pixelData) }
        func bytes(_ r: Range<Int>) -> [UInt8] { source.withBytes(r) { Array($0) } }
        func concatenated(_ rs: ArraySlice<Range<Int>>) -> [UInt8] { rs.reduce(into: [UInt8]()) { $0 += bytes($1) } }

        if count == 1 { return [concatenated(data[...])] }
        // Offsets are measured from the first byte of the first fragment's item header.
        let base = data[0].lowerBound - 8
        if let offsets = extendedOffsets(set) ?? basicOffsets(source, bot), offsets.count == count {
            var starts: [Int] = []
            for o in offsets {
                guard let i = data.firstIndex(where: { $0.lowerBound - 8 - base == o }) else {
                    throw DICOMError(.malformed("offset table entry \(o) does not start a fragment"), file: file, tag: .pixelData)
                }
                starts.append(i)
            }
            return starts.indices.map { k in
                concatenated(data[starts[k]..<(k + 1 < starts.count ? starts[k + 1] : data.count)])
            }
        }
        if data.count == count { return data.map(bytes) }
        // No usable table: end each frame at a fragment ending with EOI (FFD9), as JPEG, JPEG-LS and J2K do.
        var frames: [[UInt8]] = []
        var current: [UInt8] = []
        for r in data {
            current += bytes(r)
            let trimmed = current.last == 0 ? current.dropLast() : current[...]
            if trimmed.count >= 2, trimmed[trimmed.endIndex - 2] == 0xFF, trimmed[trimmed.endIndex - 1] == 0xD9 {
                frames.append(current)
                current = []
            }
        }
        guard frames.count == count, current.isEmpty else {
            throw DICOMError(.malformed("cannot split \(data.count) fragments into \(count) frames"), file: file, tag: .pixelData)
        }
        return frames
    }

    static func basicOffsets(_ source: ByteSource, _ bot: Range<Int>) -> [Int]? {
        guard bot.count >= 4, bot.count % 4 == 0 else { return nil }
        return source.withBytes(bot) { raw in
            (0..<(raw.count / 4)).map { Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
        }
    }

    static func extendedOffsets(_ set: DataSet) -> [Int]? {
        guard let e = set[.extendedOffsetTable], e.range.count >= 8 else { return nil }
        return set.source.withBytes(e.range) { raw in
            (0..<(raw.count / 8)).map { Int(clamping: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self))) }
        }
    }
}
