import ArgumentParser
import Dispatch
import Foundation
import Synth

struct SynthCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "synth",
        abstract: "Write a synthetic angiography dataset in the RSNA layout (series/, train.csv, train_localizers.csv, segmentations/).",
        discussion: """
            CTA (HU), MRA, MRI T2 and MRI T1post series of a head with a Circle-of-Willis-like tree of the 13 \
            named arteries, deformed per case, and saccular aneurysms of 1.5–8 mm on named segments in about \
            40 % of series. Real DICOM files, one per slice, named by SOPInstanceUID; varied spacing, \
            orientation and transfer syntax (lossless compression included); localizer points; vessel-label NIfTI for about 10 % of series. \
            Beside the RSNA tables, synth_aneurysms.csv gives each aneurysm's centre (LPS mm) and diameter, and \
            synth_series.csv each series' orientation and transfer syntax. \
            The same --seed gives the same files.
            """)

    @Option(help: "Output folder.")
    var out: String

    @Option(help: "Number of series.")
    var count: Int = 40

    @Option(help: "small (48×112×112), medium (96×224×224) or full (300×512×512).")
    var size: String = "small"

    @Option(help: "Random seed.")
    var seed: UInt64 = 1

    @Option(help: "Transfer syntaxes: varied (uncompressed, deflate, RLE, JPEG-LS, JPEG 2000), uncompressed or compressed.")
    var syntaxes: String = "varied"

    @Option(help: "Slice planes: standard (CT axial, MR axial/sagittal/coronal) or tilted (those planes tilted 8–25°).")
    var orientations: String = "standard"

    @Option(help: "Share of series with vessel-label NIfTI files (segmentations/), 0–1.")
    var segmentationFraction: Double = 0.1

    @Option(help: "Share of series drawn with aneurysms, 0–1 (a folder for train-candidates --positive-data needs only those; an aneurysm that finds no place on the vessels is dropped, so a few may have none).")
    var positiveFraction: Double = SynthOptions().positiveFraction

    @Option(help: ArgumentHelp("How the arteries end: rounded (every vessel that ends inside the head stops in a ball of its radius, as in the datasets of stops up to 22) or tapered (the MCAs, ACAs and PCAs narrow to a fifth of their radius, the carotid and vertebral arteries come in from beyond the field of view, the anterior communicating artery reaches both ACAs). The same seed gives the same cases either way.", valueName: "rounded|tapered"))
    var vesselEnds: String = "rounded"

    func run() throws {
        guard let s = SynthSize(rawValue: size) else { throw ValidationError("--size must be small, medium or full") }
        guard count > 0 else { throw ValidationError("--count must be positive") }
        guard let mix = SyntaxMix(rawValue: syntaxes) else { throw ValidationError("--syntaxes must be varied, uncompressed or compressed") }
        var options = SynthOptions(count: count, size: s, seed: seed)
        options.syntaxes = mix
        guard let planes = OrientationMix(rawValue: orientations) else { throw ValidationError("--orientations must be standard or tilted") }
        options.orientations = planes
        guard segmentationFraction >= 0, segmentationFraction <= 1 else { throw ValidationError("--segmentation-fraction must be in 0…1") }
        options.segmentationFraction = segmentationFraction
        guard positiveFraction >= 0, positiveFraction <= 1 else { throw ValidationError("--positive-fraction must be in 0…1") }
        options.positiveFraction = positiveFraction
        guard let ends = VesselEnds(rawValue: vesselEnds) else { throw ValidationError("--vessel-ends must be rounded or tapered") }
        options.vesselEnds = ends
        let start = DispatchTime.now().uptimeNanoseconds
        let bar = ProgressBar(label: "synth")
        let cases = try SynthDataset.generate(options, into: out) { done, total in bar.update(done, total) }
        bar.finish()
        let positives = cases.filter { !$0.aneurysms.isEmpty }.count
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        print("wrote \(cases.count) series (\(positives) with aneurysms, \(cases.filter(\.hasSegmentation).count) with segmentations) to \(out) in \(String(format: "%.1f", seconds)) s")
    }
}

/// A one-line progress bar with ETA on standard error, drawn only when that is a terminal (logs
/// redirected to a file stay free of carriage-return noise).
final class ProgressBar: @unchecked Sendable {
    let label: String
    let start = DispatchTime.now().uptimeNanoseconds
    let lock = NSLock()
    let isTerminal = isatty(STDERR_FILENO) != 0

    init(label: String) { self.label = label }

    func update(_ done: Int, _ total: Int) {
        guard isTerminal else { return }
        lock.lock()
        defer { lock.unlock() }
        started = true
        let width = 30
        let filled = total > 0 ? width * done / total : width
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let eta = done > 0 ? elapsed / Double(done) * Double(total - done) : 0
        let bar = String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
        FileHandle.standardError.write(Data("\r\(label) [\(bar)] \(done)/\(total)  ETA \(Int(eta.rounded())) s ".utf8))
    }

    private var started = false
    private var ended = false

    func finish() {
        guard isTerminal else { return }
        lock.lock()
        defer { lock.unlock() }
        ended = true
        FileHandle.standardError.write(Data("\n".utf8))
    }

    /// Ends the bar's line if it was drawn, so that following output starts on a new line.
    func finishIfStarted() {
        lock.lock()
        let draw = started && !ended
        lock.unlock()
        if draw { finish() }
    }
}

/// "DxHxW" → [D, H, W], each a positive multiple of 16 (the network halves each axis four times).
func parseShape(_ text: String) throws -> [Int] {
    let shape = text.split(separator: "x").compactMap { Int($0) }
    guard shape.count == 3, shape.allSatisfy({ $0 > 0 && $0 % 16 == 0 }) else {
        throw ValidationError("input shape must be DxHxW, each a positive multiple of 16, not \(text)")
    }
    return shape
}
