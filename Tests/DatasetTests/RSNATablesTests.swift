import Anatomy
import Dataset
import Foundation
import TestSupport
import Testing

@Suite struct RSNATablesTests {
    static let header = (["SeriesInstanceUID", "PatientAge", "PatientSex", "Modality"] + LocationLabel.allCases.map(\.columnName))
        .map { $0.contains(" ") ? $0 : $0 }.joined(separator: ",")

    func row(_ uid: String, _ modality: String = "CTA", positives: [LocationLabel] = [], age: String = "63") -> String {
        let values = LocationLabel.locations.map { positives.contains($0) ? "1" : "0" } + [positives.isEmpty ? "0" : "1"]
        return ([uid, age, "Female", modality] + values).joined(separator: ",")
    }

    func write(_ text: String) throws -> String {
        let path = "\(try temporaryDirectory())/table.csv"
        try text.write(toFile: path, atomically: false, encoding: .utf8)
        return path
    }

    func error(_ text: String, labels: Bool = true) throws -> DatasetError? {
        let path = try write(text)
        do {
            if labels { _ = try RSNATables.readLabels(path) } else { _ = try RSNATables.readLocalizers(path) }
            return nil
        } catch let e as DatasetError {
            return e
        }
    }

    @Test func readsLabels() throws {
        let path = try write([Self.header, row("1.2.3", positives: [.leftMCA]), row("1.2.4", "MRI T2", age: ""), row("1.2.5", "MRA")]
            .joined(separator: "\r\n") + "\r\n")
        let labels = try RSNATables.readLabels(path)
        #expect(labels.count == 3)
        #expect(labels[0][.leftMCA] && labels[0].isPositive && !labels[0][.rightMCA])
        #expect(labels[1].modality == .mriT2 && labels[1].age == nil && !labels[1].isPositive)
        #expect(labels[0].age == 63)
    }

    @Test func malformedLabelRowsNameTheLine() throws {
        let missing = try error("SeriesInstanceUID,Modality\n1,CTA\n")
        #expect(missing?.line == 1 && missing?.reason.contains("missing column") == true)
        let badValue = try error([Self.header, row("1"), row("2").replacingOccurrences(of: ",0,0,0,0,0", with: ",2,0,0,0,0")].joined(separator: "\n"))
        #expect(badValue?.line == 3 && badValue?.reason.contains("expected 0 or 1") == true, "\(String(describing: badValue))")
        let modality = try error([Self.header, row("1", "PET")].joined(separator: "\n"))
        #expect(modality?.line == 2 && modality?.reason.contains("unknown Modality 'PET'") == true)
        let duplicate = try error([Self.header, row("1"), row("2"), row("1")].joined(separator: "\n"))
        #expect(duplicate?.line == 4 && duplicate?.reason.contains("already listed on line 2") == true)
        let short = try error([Self.header, "1,63,Female,CTA,0"].joined(separator: "\n"))
        #expect(short?.line == 2 && short?.reason.contains("fields") == true)
        var inconsistent = row("1", positives: [.basilarTip])
        inconsistent.removeLast()
        inconsistent += "0"
        let mismatch = try error([Self.header, inconsistent].joined(separator: "\n"))
        #expect(mismatch?.reason.contains("Aneurysm Present is 0") == true)
        let age = try error([Self.header, row("1", age: "old")].joined(separator: "\n"))
        #expect(age?.reason.contains("PatientAge") == true)
    }

    @Test func readsLocalizersWithQuotesAndFrames() throws {
        let text = """
        SeriesInstanceUID,SOPInstanceUID,coordinates,location
        1.2.3,1.2.3.4,"{'x': 258.36, 'y': 261.36}",Left Middle Cerebral Artery
        1.2.3,1.2.3.5,"{'x': 10, 'y': 20.5, 'f': 7}",Basilar Tip
        """
        let points = try RSNATables.readLocalizers(try write(text))
        #expect(points.count == 2)
        #expect(points[0].x == 258.36 && points[0].y == 261.36 && points[0].frame == nil && points[0].location == .leftMCA)
        #expect(points[1].frame == 7 && points[1].location == .basilarTip)
    }

    @Test func malformedLocalizerRowsNameTheLine() throws {
        let head = "SeriesInstanceUID,SOPInstanceUID,coordinates,location\n"
        let unknown = try error(head + "1,2,\"{'x': 1, 'y': 2}\",Left Toe Artery\n", labels: false)
        #expect(unknown?.line == 2 && unknown?.reason.contains("unknown location") == true)
        let coords = try error(head + "1,2,\"{'x': 1}\",Basilar Tip\n", labels: false)
        #expect(coords?.reason.contains("lack finite") == true)
        let notMapping = try error(head + "1,2,x=1,Basilar Tip\n", labels: false)
        #expect(notMapping?.reason.contains("not a {") == true)
        let unclosed = try error(head + "1,2,\"{'x': 1, 'y': 2},Basilar Tip\n", labels: false)
        #expect(unclosed?.reason.contains("not closed") == true)
    }

    @Test func csvQuotingRules() throws {
        let rows = try CSV.parse("a,\"b,c\",\"d \"\"e\"\"\"\r\n\"multi\nline\",2,\n\n")
        #expect(rows.count == 2)
        #expect(rows[0].fields == ["a", "b,c", "d \"e\""])
        #expect(rows[1].fields == ["multi\nline", "2", ""])
        #expect(rows[1].line == 2)
    }

    @Test func foldsAreStratifiedAndDeterministic() {
        var series: [SeriesLabels] = []
        for i in 0..<103 {
            let modality = Modality.allCases[i % 4]
            var labels = Array(repeating: false, count: 14)
            if i % 5 < 2 { labels[LocationLabel.leftMCA.rawValue] = true; labels[13] = true }
            series.append(SeriesLabels(seriesInstanceUID: "s\(i)", age: nil, sex: nil, modality: modality, labels: labels))
        }
        let folds = Folds.assign(series, folds: 5, seed: 42)
        #expect(folds.count == 103)
        let sizes = (0..<5).map { f in folds.values.filter { $0 == f }.count }
        #expect(sizes.max()! - sizes.min()! <= 1)
        for positive in [true, false] {
            for modality in Modality.allCases {
                let stratum = series.filter { $0.isPositive == positive && $0.modality == modality }
                let counts = (0..<5).map { f in stratum.filter { folds[$0.seriesInstanceUID] == f }.count }
                #expect(counts.max()! - counts.min()! <= 1, "\(positive) \(modality): \(counts)")
            }
        }
        #expect(Folds.assign(series, folds: 5, seed: 42) == folds)
        #expect(Folds.assign(series, folds: 5, seed: 43) != folds)
    }

    /// A held-out fold is the series `Folds.assign` deals to it: the folds of one split cover every series
    /// once, and a fold outside the split is refused with a typed error.
    @Test func heldOutFoldsPartitionTheSeries() throws {
        let series = (0..<17).map { i in
            var labels = Array(repeating: false, count: 14)
            if i % 3 == 0 { labels[LocationLabel.basilarTip.rawValue] = true; labels[13] = true }
            return SeriesLabels(seriesInstanceUID: "u\(i)", age: nil, sex: nil, modality: Modality.allCases[i % 4], labels: labels)
        }
        let folds = try (0..<3).map { try HeldOutFold(index: $0, of: 3, seed: 7).members(of: series) }
        let dealt = Folds.assign(series, folds: 3, seed: 7)
        for (i, members) in folds.enumerated() {
            #expect(members == Set(dealt.filter { $0.value == i }.map(\.key)))
            #expect(members.count >= 5 && members.count <= 6)
        }
        #expect(folds.map(\.count).reduce(0, +) == 17 && folds.reduce(Set<String>()) { $0.union($1) }.count == 17)
        for (i, k) in [(3, 3), (-1, 3), (0, 1)] {
            #expect(throws: FoldError.self, "fold \(i) of \(k)") { try HeldOutFold(index: i, of: k) }
        }
    }
}
