import ArgumentParser
import Demo
import Foundation
import Preprocessing

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "The whole job on built-in data: synth → train → predict held-out series → evaluate → HTML report.",
        discussion: "Needs no download: the data is synthesised. About 10 minutes on 2 CPU cores with the defaults.")

    @OptionGroup var engineOptions: EngineOptions

    @Option(help: "Working folder (data, run, submission.csv, report/).")
    var out: String = "willis-demo"

    @Option(help: "Training time budget in minutes (training stops after the epoch that passes it).")
    var minutes: Double = 8

    @Option(help: "Synthetic training series.") var trainCount: Int = 64
    @Option(help: "Synthetic held-out series.") var testCount: Int = 32
    @Option(help: "Network input DxHxW (the notebook's is 64x128x128: about 8× slower).") var inputShape: String = "32x64x64"
    @Option(help: "reference (default) or improved preprocessing.") var preprocessing: String = "reference"
    @Option(help: "Improved mode: output spacing in mm.") var spacing: Double = 2.4

    func run() throws {
        _ = try engineOptions.load()
        var demo = DemoRun(folder: out)
        demo.minutes = minutes
        demo.trainCount = trainCount
        demo.testCount = testCount
        guard let mode = Preparation.Mode(rawValue: preprocessing) else { throw ValidationError("--preprocessing must be reference or improved") }
        demo.preparation = Preparation(mode: mode, shape: try parseShape(inputShape))
        demo.preparation.spacing = spacing
        do { try demo.preparation.validate() } catch { throw ValidationError("\(error)") }
        let result = try demo.run()
        print(String(format: "competition score on %d held-out series: %@ (%.0f s)", testCount,
                     result.score.map { String(format: "%.4f", $0) } ?? "undefined", result.seconds))
        print("report: \(result.report)")
    }
}
