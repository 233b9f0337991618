/// What went wrong reading a DICOM file, and where: the file, the tag being
/// read (if any) and the byte offset in the file (or in the inflated stream).
public struct DICOMError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Kind: Equatable, Sendable {
        /// The data ends before an element, item or value does.
        case truncated
        /// The bytes do not follow the DICOM encoding rules.
        case malformed(String)
        /// A transfer syntax or pixel encoding Willis does not decode.
        case unsupported(String)
        /// The object holds no image (SR, RTPLAN, SEG without pixels, …).
        case notAnImage(String)
        /// Decoding would need more memory than the configured limit.
        case tooLarge(bytes: Int, limit: Int)
        /// A codec library reported an error.
        case codec(String)
        /// The file could not be opened or read.
        case io(String)
    }

    public var kind: Kind
    public var file: String
    public var tag: Tag?
    public var offset: Int?

    public init(_ kind: Kind, file: String = "", tag: Tag? = nil, offset: Int? = nil) {
        self.kind = kind
        self.file = file
        self.tag = tag
        self.offset = offset
    }

    public var description: String {
        var where_ = file.isEmpty ? "" : file
        if let tag { where_ += (where_.isEmpty ? "" : " ") + "tag \(tag)" }
        if let offset { where_ += (where_.isEmpty ? "" : " ") + "at byte \(offset)" }
        let what: String
        switch kind {
        case .truncated: what = "truncated: the data ends inside an element"
        case let .malformed(m): what = "malformed: \(m)"
        case let .unsupported(m): what = "unsupported: \(m)"
        case let .notAnImage(m): what = "not an image: \(m)"
        case let .tooLarge(bytes, limit): what = "pixel data of \(bytes) bytes exceeds the limit of \(limit) bytes"
        case let .codec(m): what = "decoder error: \(m)"
        case let .io(m): what = "cannot read: \(m)"
        }
        return where_.isEmpty ? what : "\(where_): \(what)"
    }

    func at(file: String) -> DICOMError {
        var e = self
        if e.file.isEmpty { e.file = file }
        return e
    }
}
