import Foundation
import ZIPFoundation

/// An uploaded series unpacked into a folder of its own. Files are written under names of our
/// own making (`00001.dcm`, …), so nothing a client sends chooses a path; entries that try to
/// (absolute paths, `..`, links) are refused outright rather than silently renamed, since such an
/// archive was not made by a scanner.
public enum Upload {
    /// Unpacks a zip of one series into `folder`; returns how many files it wrote.
    public static func unzip(_ data: Data, into folder: String, maxFiles: Int, maxBytes: Int) throws -> Int {
        let archive: Archive
        do { archive = try Archive(data: data, accessMode: .read) } catch {
            throw ServeError.badUpload("not a zip archive (\(error))")
        }
        var files: [Entry] = []
        var declared = 0
        for entry in archive {
            let path = entry.path
            let parts = path.split(separator: "/", omittingEmptySubsequences: true)
            if path.hasPrefix("/") || path.hasPrefix("\\") || path.contains("\\") || parts.contains("..") || path.contains(":") {
                throw ServeError.badUpload("entry '\(path)' points outside the upload")
            }
            switch entry.type {
            case .directory: continue
            case .symlink: throw ServeError.badUpload("entry '\(path)' is a link")
            case .file: break
            }
            // Archivers' bookkeeping, not part of the series.
            if parts.first == "__MACOSX" || parts.last.map({ $0.hasPrefix(".") }) == true { continue }
            files.append(entry)
            declared += Int(clamping: entry.uncompressedSize)
            if files.count > maxFiles { throw ServeError.tooManyFiles(files.count, limit: maxFiles) }
            if declared > maxBytes { throw ServeError.tooLarge(declared, limit: maxBytes) }
        }
        guard !files.isEmpty else { throw ServeError.badUpload("the zip holds no files") }
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var written = 0
        for (n, entry) in files.enumerated() {
            var bytes = Data()
            do {
                _ = try archive.extract(entry, skipCRC32: false) { chunk in
                    // The sizes in the directory are the sender's word; count what actually comes out.
                    written += chunk.count
                    if written > maxBytes { throw ServeError.tooLarge(written, limit: maxBytes) }
                    bytes.append(chunk)
                }
            } catch let e as ServeError { throw e } catch {
                throw ServeError.badUpload("entry '\(entry.path)' cannot be unpacked (\(error))")
            }
            try write(bytes, index: n, into: folder)
        }
        return files.count
    }

    /// One part of a multipart/form-data body.
    public struct Part {
        public var name: String?
        public var filename: String?
        public var body: Data
    }

    /// The parts of a multipart/form-data body (RFC 7578), given its Content-Type header.
    public static func multipart(_ body: Data, contentType: String) throws -> [Part] {
        guard let boundary = contentType.split(separator: ";").map({ $0.trimmingCharacters(in: .whitespaces) })
            .first(where: { $0.lowercased().hasPrefix("boundary=") }).map({ String($0.dropFirst("boundary=".count)) })
            .map({ $0.trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }), !boundary.isEmpty else {
            throw ServeError.badUpload("multipart/form-data without a boundary")
        }
        let delimiter = Data("--\(boundary)".utf8)
        let crlf = Data("\r\n".utf8)
        guard var cursor = body.range(of: delimiter)?.upperBound else { throw ServeError.badUpload("no multipart boundary in the body") }
        var parts: [Part] = []
        while true {
            // After a delimiter: "--" ends the body, CRLF starts a part.
            if body[cursor...].starts(with: Data("--".utf8)) { break }
            guard body[cursor...].starts(with: crlf) else { throw ServeError.badUpload("malformed multipart delimiter") }
            cursor += 2
            guard let headerEnd = body.range(of: Data("\r\n\r\n".utf8), in: cursor..<body.endIndex) else {
                throw ServeError.badUpload("a multipart part has no end of headers")
            }
            let headers = String(decoding: body[cursor..<headerEnd.lowerBound], as: UTF8.self)
            guard let next = body.range(of: crlf + delimiter, in: headerEnd.upperBound..<body.endIndex) else {
                throw ServeError.badUpload("the multipart body is truncated")
            }
            var part = Part(name: nil, filename: nil, body: body.subdata(in: headerEnd.upperBound..<next.lowerBound))
            for line in headers.components(separatedBy: "\r\n") where line.lowercased().hasPrefix("content-disposition:") {
                part.name = parameter("name", in: line)
                part.filename = parameter("filename", in: line)
            }
            parts.append(part)
            cursor = next.upperBound
        }
        return parts
    }

    static func parameter(_ key: String, in line: String) -> String? {
        for item in line.split(separator: ";").dropFirst() {
            let pair = item.trimmingCharacters(in: .whitespaces)
            guard pair.lowercased().hasPrefix("\(key)=") else { continue }
            return String(pair.dropFirst(key.count + 1)).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        }
        return nil
    }

    /// Writes the file parts of a form into `folder`: one zip (unpacked), or the series' files.
    public static func unpack(_ parts: [Part], into folder: String, maxFiles: Int, maxBytes: Int) throws -> Int {
        let files = parts.filter { $0.filename != nil && !($0.filename ?? "").isEmpty }
        guard !files.isEmpty else { throw ServeError.badUpload("the form holds no files") }
        if files.count == 1, let only = files.first, only.body.starts(with: [0x50, 0x4B, 0x03, 0x04]) {
            return try unzip(only.body, into: folder, maxFiles: maxFiles, maxBytes: maxBytes)
        }
        if files.count > maxFiles { throw ServeError.tooManyFiles(files.count, limit: maxFiles) }
        for part in files {
            // Browsers send a folder's relative path as the file name; none of it is used for writing.
            let name = part.filename ?? ""
            if name.hasPrefix("/") || name.split(separator: "/").contains("..") || name.contains("\\") {
                throw ServeError.badUpload("file name '\(name)' points outside the upload")
            }
        }
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for (n, part) in files.enumerated() { try write(part.body, index: n, into: folder) }
        return files.count
    }

    static func write(_ data: Data, index: Int, into folder: String) throws {
        let path = "\(folder)/\(String(format: "%05d", index + 1)).dcm"
        guard FileManager.default.createFile(atPath: path, contents: data) else {
            throw ServeError.badUpload("cannot write \(path)")
        }
    }
}
