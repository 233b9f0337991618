import Anatomy
import ArgumentParser
import Dataset
import Foundation

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check an RSNA-layout folder: counts per label and modality, missing or unlisted series, localizers that miss their images, segmentations, modalities the DICOM reads otherwise.",
        discussion: """
            Malformed tables stop the check with the file and line. Everything else is listed; the exit \
            status is 1 when any problem was found, so scripts can gate training on it.
            """)

    @Argument(help: "RSNA-layout folder (train.csv, train_localizers.csv, series/, segmentations/).")
    var data: String

    @Option(help: "How many problems of each kind to print.") var show: Int = 20

    func run() throws {
        let check: DatasetCheck
        do { check = try DatasetCheck.run(data) } catch let e as DatasetError { throw ValidationError("\(e)") }
        let modalities = Modality.allCases
        print("\(check.listedCount) series in train.csv: " + modalities.map { "\(check.seriesByModality[$0] ?? 0) \($0.rawValue)" }.joined(separator: ", "))
        let header = "label".padding(toLength: 46, withPad: " ", startingAt: 0) + modalities.map { $0.rawValue.padding(toLength: 11, withPad: " ", startingAt: 0) }.joined() + "all"
        print(header)
        for l in LocationLabel.allCases {
            let counts = check.positivesByLabel[l] ?? [:]
            print(l.columnName.padding(toLength: 46, withPad: " ", startingAt: 0)
                  + modalities.map { String(counts[$0] ?? 0).padding(toLength: 11, withPad: " ", startingAt: 0) }.joined()
                  + String(counts.values.reduce(0, +)))
        }
        print("\(check.localizerCount) localizer points, \(check.segmentedSeries) series with vessel segmentations")
        func list(_ title: String, _ items: [String]) {
            guard !items.isEmpty else { return }
            print("\(title): \(items.count)")
            for item in items.prefix(show) { print("  \(item)") }
            if items.count > show { print("  … and \(items.count - show) more") }
        }
        list("listed in train.csv but missing under series/", check.missingOnDisk)
        list("folders under series/ not in train.csv", check.unlisted)
        list("localizer problems", check.localizerProblems.map(\.description))
        list("segmentation problems", check.segmentationProblems.map(\.description))
        list("series whose DICOM reads as another vessel contrast than train.csv's modality (training and prediction go by the DICOM; not counted as problems)",
             check.contrastDisagreements.map(\.description))
        if check.problemCount > 0 {
            print("\(check.problemCount) problem(s) found")
            throw ExitCode(1)
        }
        print("no problems found")
    }
}
