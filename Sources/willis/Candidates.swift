import ArgumentParser
import AtomicFile
import DICOM
import Dataset
import Dispatch
import Foundation
import Preprocessing

struct CandidatesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "candidates",
        abstract: "List each series' strongest bright balls (the Hessian dot filter, no training): candidate aneurysm points for a second stage.",
        discussion: """
            For each series, at its own voxels: the head's interior (its foreground less a shell --depth-mm \
            deep, so the skull stays out), intensities on a vessel-bright scale by modality (CT in HU; MR by \
            its brain median; an MR with an echo time of 60 ms or more, or without one a series description \
            naming T2, inverted, its vessels being flow voids), Li et al.'s dot measure of the Hessian at 0.5, \
            0.8, 1.2 and 1.8 mm, and its strongest local maxima (windows about 5 mm across): of the largest \
            measure over the scales, or with --peak-search eachScale of each scale's measure, merged strongest \
            first (a small aneurysm beside a larger vessel can be a maximum of a small scale alone). Writes a CSV: \
            SeriesInstanceUID, rank (0 strongest), x_mm, y_mm, z_mm (patient LPS), value. These points find \
            far more synthetic aneurysms than the detector's heatmap peaks (RESULTS.md, stop 25), but most \
            of them are not aneurysms, and a series' strongest value does not rank series: they are for a \
            classifier to score, not a finding. A series that cannot be read is reported and the rest go on \
            (exit status 3).
            """)

    @Argument(help: "A series folder, or a folder of series folders.")
    var series: String

    @Option(help: "Output CSV.")
    var out = "candidates.csv"

    @Option(help: "Candidates per series.")
    var count = 20

    @Option(help: "How deep inside the head's outer surface to look, in mm (the skull and scalp stay out).")
    var depthMM: Double = 16

    @Option(help: "Where the candidates are read: acrossScales (the maxima of the largest measure over the scales) or eachScale (each scale's maxima, merged strongest first).")
    var peakSearch: DotFilter.PeakSearch = .acrossScales

    func validate() throws {
        guard count >= 1 else { throw ValidationError("--count must be at least 1, not \(count)") }
        guard depthMM.isFinite && depthMM >= 0 else { throw ValidationError("--depth-mm must be a non-negative number of mm, not \(depthMM)") }
    }

    func run() throws {
        let folders = seriesFolders(series)
        let filter = DotFilter(peakSearch: peakSearch)
        var lines = ["SeriesInstanceUID,rank,x_mm,y_mm,z_mm,value"]
        var failures = 0
        let start = DispatchTime.now().uptimeNanoseconds
        let bar = ProgressBar(label: "finding candidates")
        for (n, folder) in folders.enumerated() {
            do {
                let loaded = try SeriesLoader().load(folder)
                let contrast = DotFilter.VesselContrast(loaded)
                let found = filter.candidates(loaded.volume, contrast: contrast, count: count, depthMM: depthMM)
                if found.isEmpty {
                    bar.finishIfStarted()
                    FileHandle.standardError.write(Data("warning: \(folder): no bright ball inside the head (nothing vessel-bright there?)\n".utf8))
                }
                for (rank, c) in found.enumerated() {
                    lines.append("\(loaded.seriesInstanceUID),\(rank)," + String(format: "%.3f,%.3f,%.3f,%.6g", c.point.x, c.point.y, c.point.z, c.value))
                }
            } catch {
                failures += 1
                bar.finishIfStarted()
                FileHandle.standardError.write(Data("error: \(folder): \(error)\n".utf8))
            }
            bar.update(n + 1, folders.count)
        }
        bar.finishIfStarted()
        try AtomicFile.write(Data((lines.joined(separator: "\n") + "\n").utf8), to: out)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        print("wrote \(out): \(lines.count - 1) candidates of \(folders.count - failures) series, \(failures) failed, "
              + String(format: "%.1f s (%.2f s per series)", seconds, seconds / Double(max(folders.count, 1))))
        if failures > 0 { throw ExitCode(3) }
    }
}

extension DotFilter.PeakSearch: ExpressibleByArgument {}
