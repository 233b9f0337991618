import Anatomy
import Dataset
import Foundation
import Synth
import TestSupport
import Testing

@Suite struct DatasetCheckTests {
    @Test func aCleanSyntheticSetHasNoProblemsAndItsCountsMatchTheTable() throws {
        let root = try temporaryDirectory()
        var options = SynthOptions(count: 8, size: .small, seed: 41)
        options.segmentationFraction = 0.5
        let cases = try SynthDataset.generate(options, into: root)
        let check = try DatasetCheck.run(root)
        #expect(check.problemCount == 0, "\(check.localizerProblems) \(check.segmentationProblems)")
        #expect(check.contrastDisagreements.isEmpty, "\(check.contrastDisagreements)")
        #expect(check.listedCount == 8)
        #expect(check.localizerCount == cases.reduce(0) { $0 + $1.aneurysms.count })
        #expect(check.segmentedSeries == cases.filter(\.hasSegmentation).count)
        for m in Modality.allCases { #expect(check.seriesByModality[m] ?? 0 == cases.filter { $0.modality == m }.count) }
        let positives = check.positivesByLabel[.aneurysmPresent]?.values.reduce(0, +) ?? 0
        #expect(positives == cases.filter { !$0.aneurysms.isEmpty }.count)
    }

    /// A table that calls a T2 series MRA, or a CTA series MRI T2, is reported with what the DICOM says;
    /// not as a problem, since training and prediction read the DICOM.
    @Test func aTableModalityTheDICOMContradictsIsReported() throws {
        let root = try temporaryDirectory()
        let cases = try SynthDataset.generate(SynthOptions(count: 8, size: .small, seed: 46), into: root)
        let t2 = try #require(cases.first { $0.modality == .mriT2 }).seriesInstanceUID
        let ct = try #require(cases.first { $0.modality == .cta }).seriesInstanceUID
        var table = try String(contentsOfFile: "\(root)/train.csv", encoding: .utf8).split(separator: "\n").map(String.init)
        for (n, line) in table.enumerated() {
            if line.contains(t2) { table[n] = line.replacingOccurrences(of: ",MRI T2,", with: ",MRA,") }
            if line.contains(ct) { table[n] = line.replacingOccurrences(of: ",CTA,", with: ",MRI T2,") }
        }
        try (table.joined(separator: "\n") + "\n").write(toFile: "\(root)/train.csv", atomically: false, encoding: .utf8)
        let check = try DatasetCheck.run(root)
        #expect(check.problemCount == 0)
        let found = Dictionary(uniqueKeysWithValues: check.contrastDisagreements.map { (($0.file as NSString).lastPathComponent, $0.reason) })
        #expect(found.count == 2, "\(check.contrastDisagreements)")
        #expect(found[t2]?.contains("train.csv says MRA (brightMR)") == true && found[t2]?.contains("EchoTime 102 ms") == true
                && found[t2]?.hasSuffix("reads darkMR") == true, "\(found[t2] ?? "")")
        #expect(found[ct]?.contains("Modality CT") == true && found[ct]?.hasSuffix("reads ct") == true, "\(found[ct] ?? "")")
    }

    @Test func everyKindOfProblemIsListedWithItsLine() throws {
        let root = try temporaryDirectory()
        var options = SynthOptions(count: 6, size: .small, seed: 42)
        options.positiveFraction = 1
        options.segmentationFraction = 1
        let cases = try SynthDataset.generate(options, into: root)
        let fm = FileManager.default
        // A listed series goes missing; an unlisted folder appears.
        let gone = cases[0].seriesInstanceUID
        try fm.removeItem(atPath: "\(root)/series/\(gone)")
        try fm.createDirectory(atPath: "\(root)/series/9.9.9", withIntermediateDirectories: true)
        // Localizer rows: off the image, an unknown slice, a location train.csv does not mark, an unlisted series.
        let c = cases[1]
        let sop = try #require(try fm.contentsOfDirectory(atPath: "\(root)/series/\(c.seriesInstanceUID)").first).replacingOccurrences(of: ".dcm", with: "")
        let unmarked = try #require(LocationLabel.locations.first { l in !c.aneurysms.contains { $0.location == l } })
        let marked = c.aneurysms[0].location
        let existing = try String(contentsOfFile: "\(root)/train_localizers.csv", encoding: .utf8)
        let lines = existing.split(separator: "\n").count
        let extra = [
            "\(c.seriesInstanceUID),\(sop),\"{'x': 9000.0, 'y': 10.0}\",\(marked.columnName)",
            "\(c.seriesInstanceUID),1.2.3.4.5,\"{'x': 10.0, 'y': 10.0}\",\(marked.columnName)",
            "\(c.seriesInstanceUID),\(sop),\"{'x': 10.0, 'y': 10.0}\",\(unmarked.columnName)",
            "7.7.7,\(sop),\"{'x': 10.0, 'y': 10.0}\",\(marked.columnName)",
        ]
        try (existing + extra.joined(separator: "\n") + "\n").write(toFile: "\(root)/train_localizers.csv", atomically: false, encoding: .utf8)
        // A segmentation with a value that is no vessel label.
        let cow = "\(root)/segmentations/\(cases[2].seriesInstanceUID)_cowseg.nii"
        var bytes = try Data(contentsOf: URL(fileURLWithPath: cow))
        bytes[bytes.count - 1] = 200
        try bytes.write(to: URL(fileURLWithPath: cow))

        let check = try DatasetCheck.run(root)
        #expect(check.missingOnDisk == [gone])
        #expect(check.unlisted == ["9.9.9"])
        func problem(line: Int) -> String? { check.localizerProblems.first { $0.line == line }?.reason }
        #expect(problem(line: lines + 1)?.contains("outside its") == true, "\(check.localizerProblems)")
        #expect(problem(line: lines + 2)?.contains("no slice 1.2.3.4.5") == true)
        #expect(problem(line: lines + 3)?.contains("does not mark \(unmarked.columnName)") == true)
        #expect(problem(line: lines + 4)?.contains("not in train.csv") == true)
        // The removed series' own localizer rows say its folder is missing.
        #expect(check.localizerProblems.contains { $0.reason.contains("folder") && $0.reason.contains(gone) })
        #expect(check.segmentationProblems.map(\.file) == [cow])
        #expect(check.segmentationProblems.first?.reason.contains("200") == true)
    }
}
