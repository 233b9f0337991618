import Anatomy
import Dataset
import Foundation

/// submission.csv: SeriesInstanceUID and the 14 probabilities in the competition's column order.
public enum Submission {
    public static var header: String {
        (["SeriesInstanceUID"] + LocationLabel.allCases.map(\.columnName)).map { $0.contains(",") ? "\"\($0)\"" : $0 }
            .joined(separator: ",")
    }

    /// Each probability in the shortest form that reads back as the same number. A fixed number of
    /// decimals would tie small probabilities (1e-9 and 3e-9 both "0.000000") and so change the AUC, which
    /// ranks them.
    public static func encode(_ rows: [(uid: String, probabilities: [Double])]) -> String {
        var text = header + "\n"
        for row in rows {
            text += ([row.uid] + row.probabilities.map { "\($0)" }).joined(separator: ",") + "\n"
        }
        return text
    }

    /// Reads a submission; every row needs the 14 columns as probabilities in [0, 1].
    public static func read(_ path: String) throws -> [String: [Double]] {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw DatasetError(file: path, reason: "cannot read: \(error.localizedDescription)")
        }
        let rows: [(line: Int, fields: [String])]
        do { rows = try CSV.parse(text) } catch let e as CSV.Error { throw DatasetError(file: path, line: e.line, reason: e.reason) }
        guard let header = rows.first?.fields else { throw DatasetError(file: path, reason: "empty file") }
        let columns = LocationLabel.allCases.map { label -> Int? in header.firstIndex(of: label.columnName) }
        guard let uidColumn = header.firstIndex(of: "SeriesInstanceUID"), columns.allSatisfy({ $0 != nil }) else {
            throw DatasetError(file: path, line: 1, reason: "needs SeriesInstanceUID and the 14 label columns")
        }
        var out: [String: [Double]] = [:]
        for row in rows.dropFirst() {
            guard row.fields.count == header.count else {
                throw DatasetError(file: path, line: row.line, reason: "\(row.fields.count) fields, the header has \(header.count)")
            }
            let values = try columns.compactMap { $0 }.map { c -> Double in
                guard let v = Double(row.fields[c]), v >= 0, v <= 1 else {
                    throw DatasetError(file: path, line: row.line, reason: "'\(row.fields[c])' is not a probability")
                }
                return v
            }
            out[row.fields[uidColumn]] = values
        }
        return out
    }
}
