/// Parses data elements from a byte buffer under one transfer syntax (PS3.5 §7).
/// Every read is bounds-checked; a value that runs past its container is a
/// `truncated` error naming the tag and offset.
struct DataSetParser {
    let bytes: UnsafeRawBufferPointer
    let source: ByteSource
    let explicitVR: Bool
    let bigEndian: Bool
    let file: String
    /// Stop before the pixel data value: header-only reads never touch those pages.
    let stopAtPixelData: Bool
    /// Offset of `bytes[0]` in the file, for error messages.
    let fileOffset: Int

    static let undefinedLength: UInt32 = 0xFFFF_FFFF
    static let maxDepth = 16

    func fail(_ kind: DICOMError.Kind, _ tag: Tag?, _ at: Int) -> DICOMError {
        DICOMError(kind, file: file, tag: tag, offset: fileOffset + at)
    }

    @inline(__always) func u16(_ at: Int) -> UInt16 {
        let v = bytes.loadUnaligned(fromByteOffset: at, as: UInt16.self)
        return bigEndian ? UInt16(bigEndian: v) : UInt16(littleEndian: v)
    }

    @inline(__always) func u32(_ at: Int) -> UInt32 {
        let v = bytes.loadUnaligned(fromByteOffset: at, as: UInt32.self)
        return bigEndian ? UInt32(bigEndian: v) : UInt32(littleEndian: v)
    }

    @inline(__always) func tag(_ at: Int) -> Tag { Tag(u16(at), u16(at + 2)) }

    /// Parses elements in `start..<end`, or up to an item delimiter when `delimited`.
    /// Returns the data set and the offset just past it (past the delimiter, if any).
    func parse(from start: Int, to end: Int, delimited: Bool, depth: Int) throws -> (DataSet, Int) {
        guard depth <= Self.maxDepth else { throw fail(.malformed("sequences nested deeper than \(Self.maxDepth)"), nil, start) }
        var set = DataSet(source: source, bigEndian: bigEndian)
        var p = start
        while p < end {
            guard p + 8 <= end else { throw fail(.truncated, nil, p) }
            let t = tag(p)
            if t.group == 0xFFFE {
                if t == .itemDelimitation && delimited { return (set, p + 8) }
                throw fail(.malformed("unexpected \(t) inside a data set"), t, p)
            }
            var vr: VR
            var length: UInt32
            var header: Int
            if explicitVR, let explicit = VR(bytes: bytes[p + 4], bytes[p + 5]) {
                vr = explicit
                if vr.hasLongLength {
                    guard p + 12 <= end else { throw fail(.truncated, t, p) }
                    length = u32(p + 8)
                    header = 12
                } else {
                    length = UInt32(u16(p + 6))
                    header = 8
                }
            } else {
                // Implicit VR, or an explicit-VR file that switches to implicit for one element
                // (seen in the wild; pydicom reads it the same way).
                vr = DataDictionary.vr(for: t) ?? .UN
                length = u32(p + 4)
                header = 8
            }
            let valueStart = p + header
            if t == .pixelData, stopAtPixelData {
                // Record where native pixel data lies without touching its bytes; encapsulated
                // data (undefined length) keeps an empty range and is parsed on a full read.
                var range = valueStart..<valueStart
                if length != Self.undefinedLength {
                    guard valueStart + Int(length) <= end else { throw fail(.truncated, t, p) }
                    range = valueStart..<(valueStart + Int(length))
                }
                set.elements[t] = Element(tag: t, vr: vr, range: range)
                return (set, end)
            }
            if length == Self.undefinedLength {
                if t == .pixelData {
                    let (fragments, next) = try parseFragments(from: valueStart, to: end, tag: t)
                    var e = Element(tag: t, vr: vr, range: valueStart..<valueStart)
                    e.fragments = fragments
                    set.elements[t] = e
                    p = next
                } else if vr == .SQ || vr == .UN || !explicitVR {
                    let (items, next) = try parseItems(from: valueStart, to: end, delimited: true, tag: t, depth: depth)
                    var e = Element(tag: t, vr: .SQ, range: valueStart..<valueStart)
                    e.items = items
                    set.elements[t] = e
                    p = next
                } else {
                    throw fail(.malformed("undefined length on a \(vr.rawValue) element"), t, p)
                }
                continue
            }
            let valueEnd = valueStart + Int(length)
            guard valueEnd <= end else { throw fail(.truncated, t, p) }
            if vr == .SQ || (vr == .UN && length >= 8 && tag(valueStart) == .item && !explicitVR) {
                let (items, _) = try parseItems(from: valueStart, to: valueEnd, delimited: false, tag: t, depth: depth)
                var e = Element(tag: t, vr: .SQ, range: valueStart..<valueStart)
                e.items = items
                set.elements[t] = e
            } else {
                set.elements[t] = Element(tag: t, vr: vr, range: valueStart..<valueEnd)
            }
            p = valueEnd
        }
        if delimited { throw fail(.truncated, nil, p) }
        return (set, p)
    }

    /// Items of a sequence, defined length (`start..<end`) or delimited.
    func parseItems(from start: Int, to end: Int, delimited: Bool, tag owner: Tag, depth: Int) throws -> ([DataSet], Int) {
        var items: [DataSet] = []
        var p = start
        while p < end {
            guard p + 8 <= end else { throw fail(.truncated, owner, p) }
            let t = tag(p)
            let length = u32(p + 4)
            if t == .sequenceDelimitation {
                guard delimited else { throw fail(.malformed("sequence delimiter in a defined-length sequence"), owner, p) }
                return (items, p + 8)
            }
            guard t == .item else { throw fail(.malformed("expected an item in sequence, found \(t)"), owner, p) }
            if length == Self.undefinedLength {
                let (item, next) = try parse(from: p + 8, to: end, delimited: true, depth: depth + 1)
                items.append(item)
                p = next
            } else {
                let itemEnd = p + 8 + Int(length)
                guard itemEnd <= end else { throw fail(.truncated, owner, p) }
                let (item, _) = try parse(from: p + 8, to: itemEnd, delimited: false, depth: depth + 1)
                items.append(item)
                p = itemEnd
            }
        }
        if delimited { throw fail(.truncated, owner, p) }
        return (items, p)
    }

    /// Fragments of encapsulated pixel data (PS3.5 A.4), the Basic Offset Table first.
    func parseFragments(from start: Int, to end: Int, tag owner: Tag) throws -> ([Range<Int>], Int) {
        var fragments: [Range<Int>] = []
        var p = start
        while true {
            guard p + 8 <= end else { throw fail(.truncated, owner, p) }
            let t = tag(p)
            let length = u32(p + 4)
            if t == .sequenceDelimitation { return (fragments, p + 8) }
            guard t == .item else { throw fail(.malformed("expected a pixel data fragment, found \(t)"), owner, p) }
            guard length != Self.undefinedLength else {
                throw fail(.malformed("pixel data fragment of undefined length"), owner, p)
            }
            let fragmentEnd = p + 8 + Int(length)
            guard fragmentEnd <= end else { throw fail(.truncated, owner, p) }
            fragments.append((p + 8)..<fragmentEnd)
            p = fragmentEnd
        }
    }
}
