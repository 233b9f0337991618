import Anatomy
import DICOM
import Dispatch
import Foundation
import NIfTI
import Preprocessing

/// `willis check`: what an RSNA-layout folder holds and what is wrong with it, before hours of
/// training find out. Tables are validated row by row (a malformed table throws, naming the line);
/// the rest is gathered into a report so that every problem is listed at once.
public struct DatasetCheck: Sendable {
    /// Series per modality, and positives per location per modality.
    public var seriesByModality: [Modality: Int] = [:]
    public var positivesByLabel: [LocationLabel: [Modality: Int]] = [:]
    public var listedCount = 0
    /// In train.csv but with no folder under series/.
    public var missingOnDisk: [String] = []
    /// Folders under series/ that train.csv does not list.
    public var unlisted: [String] = []
    public var localizerCount = 0
    /// Localizer rows that do not fit the images or the labels, each naming its line.
    public var localizerProblems: [DatasetError] = []
    /// Series with `<uid>_cowseg.nii` (and `<uid>.nii`) under segmentations/.
    public var segmentedSeries = 0
    public var segmentationProblems: [DatasetError] = []
    /// Series whose DICOM header reads as another vessel contrast (CT, bright- or dark-vessel MR) than
    /// their train.csv modality: not counted as problems, since training and prediction both go by the
    /// DICOM (`DotFilter.VesselContrast(series)`), but a wrong table or an echo time that misleads shows here.
    public var contrastDisagreements: [DatasetError] = []

    public var problemCount: Int { missingOnDisk.count + unlisted.count + localizerProblems.count + segmentationProblems.count }

    /// Reads the tables under `root`, lists the series folders, and checks every localizer point
    /// against its slice's header (rows × columns, frames), every segmentation's labels, and each
    /// listed series' modality against one of its headers (`contrastDisagreements`).
    public static func run(_ root: String) throws -> DatasetCheck {
        var check = DatasetCheck()
        let labels = try RSNATables.readLabels("\(root)/train.csv")
        check.listedCount = labels.count
        for row in labels {
            check.seriesByModality[row.modality, default: 0] += 1
            for l in LocationLabel.allCases where row[l] { check.positivesByLabel[l, default: [:]][row.modality, default: 0] += 1 }
        }
        let folders = Set(((try? FileManager.default.contentsOfDirectory(atPath: "\(root)/series")) ?? []).filter { !$0.hasPrefix(".") })
        let listed = Set(labels.map(\.seriesInstanceUID))
        check.missingOnDisk = labels.map(\.seriesInstanceUID).filter { !folders.contains($0) }
        check.unlisted = folders.subtracting(listed).sorted()
        let byUID = Dictionary(labels.map { ($0.seriesInstanceUID, $0) }, uniquingKeysWith: { a, _ in a })

        let localizerFile = "\(root)/train_localizers.csv"
        if FileManager.default.fileExists(atPath: localizerFile) {
            let points = try RSNATables.readLocalizers(localizerFile)
            check.localizerCount = points.count
            var problems = [[DatasetError]](repeating: [], count: points.count)
            problems.withUnsafeMutableBufferPointer { out in
                DispatchQueue.concurrentPerform(iterations: points.count) { i in
                    out[i] = Self.problems(points[i], labels: byUID[points[i].seriesInstanceUID], root: root, file: localizerFile)
                }
            }
            check.localizerProblems = problems.flatMap { $0 }
        }

        let present = labels.filter { folders.contains($0.seriesInstanceUID) }
        var disagreements = [DatasetError?](repeating: nil, count: present.count)
        disagreements.withUnsafeMutableBufferPointer { out in
            DispatchQueue.concurrentPerform(iterations: present.count) { i in
                out[i] = Self.contrastDisagreement(present[i], folder: "\(root)/series/\(present[i].seriesInstanceUID)")
            }
        }
        check.contrastDisagreements = disagreements.compactMap { $0 }

        let segmentations = ((try? FileManager.default.contentsOfDirectory(atPath: "\(root)/segmentations")) ?? []).sorted()
        for name in segmentations where name.hasSuffix("_cowseg.nii") || name.hasSuffix("_cowseg.nii.gz") {
            let uid = String(name.prefix { $0 != "_" })
            check.segmentedSeries += 1
            let path = "\(root)/segmentations/\(name)"
            if !listed.contains(uid) {
                check.segmentationProblems.append(DatasetError(file: path, reason: "series \(uid) is not in train.csv"))
            }
            do {
                let image = try NIfTI.read(path)
                if let bad = image.volume.voxels.first(where: { !($0 >= 0 && $0 <= 13 && $0 == $0.rounded()) }) {
                    check.segmentationProblems.append(DatasetError(file: path, reason: "holds \(bad), not a vessel label 0–13"))
                }
            } catch {
                check.segmentationProblems.append(DatasetError(file: path, reason: "unreadable: \(error)"))
            }
        }
        return check
    }

    /// Whether the first readable header under `folder` reads as another vessel contrast than `row`'s
    /// modality; nil when they agree or no header can be read (the training's own read reports that).
    static func contrastDisagreement(_ row: SeriesLabels, folder: String) -> DatasetError? {
        guard let files = try? SeriesLoader.files(at: folder) else { return nil }
        for path in files {
            guard let set = try? DICOMFile.read(path, options: .init(headerOnly: true)).dataSet, let modality = set.string(.modality) else { continue }
            let description = set.string(.seriesDescription), echoTime = SeriesLoader.echoTime(set)
            let read = DotFilter.VesselContrast(modality: modality, seriesDescription: description, echoTimeMS: echoTime)
            let listed = DotFilter.VesselContrast(modality: row.modality.rawValue)
            guard read != listed else { return nil }
            let facts = ["Modality \(modality)", echoTime.map { String(format: "EchoTime %g ms", $0) }, description.map { "SeriesDescription \"\($0)\"" }]
            return DatasetError(file: folder, reason: "train.csv says \(row.modality.rawValue) (\(listed.rawValue)); its DICOM (\(facts.compactMap { $0 }.joined(separator: ", "))) reads \(read.rawValue)")
        }
        return nil
    }

    /// What is wrong with one localizer point: its series or slice is missing, the point lies outside
    /// the slice, or train.csv does not mark its location.
    static func problems(_ p: LocalizerPoint, labels: SeriesLabels?, root: String, file: String) -> [DatasetError] {
        func problem(_ reason: String) -> DatasetError { DatasetError(file: file, line: p.line, reason: reason) }
        guard let labels else { return [problem("series \(p.seriesInstanceUID) is not in train.csv")] }
        var out: [DatasetError] = []
        if !labels[p.location] { out.append(problem("train.csv does not mark \(p.location.columnName) for series \(p.seriesInstanceUID)")) }
        let folder = "\(root)/series/\(p.seriesInstanceUID)"
        guard FileManager.default.fileExists(atPath: folder) else { return out + [problem("series folder \(folder) is missing")] }
        // The RSNA layout names files by SOPInstanceUID; otherwise look through the folder's headers.
        let named = "\(folder)/\(p.sopInstanceUID).dcm"
        var candidates = FileManager.default.fileExists(atPath: named) ? [named] : []
        if candidates.isEmpty { candidates = (try? SeriesLoader.files(at: folder)) ?? [] }
        for path in candidates {
            guard let dicom = try? DICOMFile.read(path, options: .init(headerOnly: true)),
                  dicom.dataSet.string(.sopInstanceUID) == p.sopInstanceUID else { continue }
            let rows = dicom.dataSet.int(.rows) ?? 0, columns = dicom.dataSet.int(.columns) ?? 0
            let frames = dicom.dataSet.int(.numberOfFrames) ?? 1
            if !(p.x >= 0 && p.x <= Double(columns) && p.y >= 0 && p.y <= Double(rows)) {
                out.append(problem(String(format: "point (%.1f, %.1f) is outside its %d×%d slice %@", p.x, p.y, columns, rows, p.sopInstanceUID)))
            }
            if let f = p.frame, f >= frames {
                out.append(problem("frame \(f) of \(p.sopInstanceUID), which has \(frames) frame(s)"))
            }
            return out
        }
        return out + [problem("no slice \(p.sopInstanceUID) in \(folder)")]
    }
}
