/// A table of per-series draw weights for training (`willis train --series-weights`): a CSV with the
/// columns SeriesInstanceUID and weight, one row per series. A series drawn twice as heavily is seen
/// twice as often; so a user can lean training towards the cases a model gets wrong, a rare scanner,
/// or anything else a column of train.csv does not say.
public enum SeriesWeights {
    /// Reads the table: every weight a finite number ≥ 0, no series listed twice, at least one weight
    /// above zero.
    public static func read(_ path: String) throws -> [String: Double] {
        let rows = try RSNATables.table(path)
        guard let header = rows.first?.fields.map({ $0.trimmingCharacters(in: .whitespaces) }) else {
            throw DatasetError(file: path, reason: "empty file")
        }
        guard let uidColumn = header.firstIndex(of: "SeriesInstanceUID"), let weightColumn = header.firstIndex(of: "weight") else {
            throw DatasetError(file: path, line: 1, reason: "the header needs the columns SeriesInstanceUID and weight")
        }
        var weights: [String: Double] = [:], lines: [String: Int] = [:]
        for row in rows.dropFirst() {
            func fail(_ reason: String) -> DatasetError { DatasetError(file: path, line: row.line, reason: reason) }
            guard row.fields.count == header.count else { throw fail("\(row.fields.count) fields, the header has \(header.count)") }
            let uid = row.fields[uidColumn].trimmingCharacters(in: .whitespaces)
            let text = row.fields[weightColumn].trimmingCharacters(in: .whitespaces)
            guard !uid.isEmpty else { throw fail("empty SeriesInstanceUID") }
            if let first = lines[uid] { throw fail("series \(uid) already listed on line \(first)") }
            guard let weight = Double(text), weight.isFinite, weight >= 0 else {
                throw fail("weight '\(text)' of series \(uid) is not a finite number ≥ 0")
            }
            weights[uid] = weight
            lines[uid] = row.line
        }
        guard weights.values.contains(where: { $0 > 0 }) else {
            throw DatasetError(file: path, reason: "no series has a weight above zero")
        }
        return weights
    }
}
