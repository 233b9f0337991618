import Anatomy
import Foundation

/// What is wrong with a dataset's tables or folders, naming the file and row.
public struct DatasetError: Error, CustomStringConvertible, Equatable, Sendable {
    public var file: String
    public var line: Int?
    public var reason: String
    public init(file: String, line: Int? = nil, reason: String) {
        self.file = file
        self.line = line
        self.reason = reason
    }
    public var description: String { line.map { "\(file):\($0): \(reason)" } ?? "\(file): \(reason)" }
}

/// The modalities of the RSNA data, as train.csv spells them.
public enum Modality: String, CaseIterable, Codable, Sendable {
    case cta = "CTA"
    case mra = "MRA"
    case mriT2 = "MRI T2"
    case mriT1post = "MRI T1post"
}

/// One row of train.csv.
public struct SeriesLabels: Equatable, Codable, Sendable {
    public var seriesInstanceUID: String
    public var age: Int?
    public var sex: String?
    public var modality: Modality
    /// 14 values in `LocationLabel` order.
    public var labels: [Bool]

    public init(seriesInstanceUID: String, age: Int?, sex: String?, modality: Modality, labels: [Bool]) {
        precondition(labels.count == LocationLabel.allCases.count, "14 labels expected")
        (self.seriesInstanceUID, self.age, self.sex, self.modality, self.labels) = (seriesInstanceUID, age, sex, modality, labels)
    }

    public subscript(label: LocationLabel) -> Bool { labels[label.rawValue] }
    public var isPositive: Bool { labels[LocationLabel.aneurysmPresent.rawValue] }
}

/// One row of train_localizers.csv: a point on one slice (and frame) marking an aneurysm.
public struct LocalizerPoint: Equatable, Codable, Sendable {
    public var seriesInstanceUID: String
    public var sopInstanceUID: String
    public var x: Double
    public var y: Double
    /// Frame of a multi-frame object ('f' key), 0-based when given.
    public var frame: Int?
    public var location: LocationLabel
    /// The line of train_localizers.csv it came from, for messages.
    public var line: Int?

    public init(seriesInstanceUID: String, sopInstanceUID: String, x: Double, y: Double, frame: Int?, location: LocationLabel, line: Int? = nil) {
        (self.seriesInstanceUID, self.sopInstanceUID, self.x, self.y, self.frame, self.location, self.line) =
            (seriesInstanceUID, sopInstanceUID, x, y, frame, location, line)
    }
}

public enum RSNATables {
    static let required = ["SeriesInstanceUID", "PatientAge", "PatientSex", "Modality"] + LocationLabel.allCases.map(\.columnName)

    /// Reads train.csv: checks the header, every value, and that no series is listed twice.
    public static func readLabels(_ path: String) throws -> [SeriesLabels] {
        let rows = try table(path)
        guard let header = rows.first?.fields else { throw DatasetError(file: path, reason: "empty file") }
        let missing = required.filter { !header.contains($0) }
        guard missing.isEmpty else {
            throw DatasetError(file: path, line: 1, reason: "missing column(s): \(missing.joined(separator: ", "))")
        }
        let index = Dictionary(header.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        var seen: [String: Int] = [:]
        return try rows.dropFirst().map { row in
            func fail(_ reason: String) -> DatasetError { DatasetError(file: path, line: row.line, reason: reason) }
            guard row.fields.count == header.count else {
                throw fail("\(row.fields.count) fields, the header has \(header.count)")
            }
            func value(_ column: String) -> String { index[column].map { row.fields[$0].trimmingCharacters(in: .whitespaces) } ?? "" }
            let uid = value("SeriesInstanceUID")
            guard !uid.isEmpty else { throw fail("empty SeriesInstanceUID") }
            if let first = seen[uid] { throw fail("series \(uid) already listed on line \(first)") }
            seen[uid] = row.line
            guard let modality = Modality(rawValue: value("Modality")) else {
                throw fail("unknown Modality '\(value("Modality"))' (expected \(Modality.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            let ageText = value("PatientAge")
            let age = ageText.isEmpty ? nil : Int(ageText.filter(\.isNumber))
            if !ageText.isEmpty && age == nil { throw fail("PatientAge '\(ageText)' is not a number") }
            let labels = try LocationLabel.allCases.map { label -> Bool in
                switch value(label.columnName) {
                case "0", "0.0": return false
                case "1", "1.0": return true
                case let other: throw fail("'\(label.columnName)' is '\(other)', expected 0 or 1")
                }
            }
            let anyLocation = LocationLabel.locations.contains { labels[$0.rawValue] }
            if anyLocation != labels[LocationLabel.aneurysmPresent.rawValue] {
                throw fail("Aneurysm Present is \(labels[13] ? 1 : 0) but the locations say \(anyLocation ? 1 : 0)")
            }
            return SeriesLabels(seriesInstanceUID: uid, age: age, sex: value("PatientSex").isEmpty ? nil : value("PatientSex"),
                                modality: modality, labels: labels)
        }
    }

    /// Reads train_localizers.csv (coordinates like `{'x': 258.36, 'y': 261.36}`, optionally with `'f'`).
    public static func readLocalizers(_ path: String) throws -> [LocalizerPoint] {
        let rows = try table(path)
        guard let header = rows.first?.fields else { throw DatasetError(file: path, reason: "empty file") }
        let needed = ["SeriesInstanceUID", "SOPInstanceUID", "coordinates", "location"]
        let missing = needed.filter { !header.contains($0) }
        guard missing.isEmpty else { throw DatasetError(file: path, line: 1, reason: "missing column(s): \(missing.joined(separator: ", "))") }
        let index = Dictionary(header.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        return try rows.dropFirst().map { row in
            func fail(_ reason: String) -> DatasetError { DatasetError(file: path, line: row.line, reason: reason) }
            guard row.fields.count == header.count else { throw fail("\(row.fields.count) fields, the header has \(header.count)") }
            func value(_ c: String) -> String { index[c].map { row.fields[$0].trimmingCharacters(in: .whitespaces) } ?? "" }
            guard let location = LocationLabel(columnName: value("location")), location != .aneurysmPresent else {
                throw fail("unknown location '\(value("location"))'")
            }
            let coordinates = try parseCoordinates(value("coordinates"), fail)
            guard let x = coordinates["x"], let y = coordinates["y"], x.isFinite, y.isFinite else {
                throw fail("coordinates '\(value("coordinates"))' lack finite 'x' and 'y'")
            }
            var frame: Int?
            if let f = coordinates["f"] {
                guard f.isFinite, f >= 0, f == f.rounded(), f < 1e7 else { throw fail("frame 'f' \(f) is not a frame number") }
                frame = Int(f)
            }
            guard !value("SeriesInstanceUID").isEmpty, !value("SOPInstanceUID").isEmpty else { throw fail("empty UID") }
            return LocalizerPoint(seriesInstanceUID: value("SeriesInstanceUID"), sopInstanceUID: value("SOPInstanceUID"),
                                  x: x, y: y, frame: frame, location: location, line: row.line)
        }
    }

    /// `{'x': 1.5, 'y': 2, 'f': 3}` → ["x": 1.5, "y": 2, "f": 3].
    static func parseCoordinates(_ text: String, _ fail: (String) -> DatasetError) throws -> [String: Double] {
        let body = text.trimmingCharacters(in: .whitespaces)
        guard body.hasPrefix("{"), body.hasSuffix("}") else { throw fail("coordinates '\(text)' are not a {…} mapping") }
        var result: [String: Double] = [:]
        for pair in body.dropFirst().dropLast().split(separator: ",") {
            let parts = pair.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, let v = Double(parts[1]) else { throw fail("bad coordinate entry '\(pair)'") }
            result[parts[0].trimmingCharacters(in: CharacterSet(charactersIn: "'\""))] = v
        }
        return result
    }

    static func table(_ path: String) throws -> [(line: Int, fields: [String])] {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw DatasetError(file: path, reason: "cannot read: \(error.localizedDescription)")
        }
        do {
            return try CSV.parse(text)
        } catch let e as CSV.Error {
            throw DatasetError(file: path, line: e.line, reason: e.reason)
        }
    }
}
