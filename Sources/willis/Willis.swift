import ArgumentParser
import Foundation

@main
struct Willis: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "willis",
        abstract: "Find intracranial aneurysms in 3D brain angiography (CTA, MRA, MR) with a libtorch engine.",
        discussion: """
            Willis reads DICOM series, trains the detector and writes one probability per artery \
            location plus "Aneurysm Present". The network runs on libtorch through Willis's own engine \
            library, loaded at run time (--engine or WILLIS_ENGINE; scripts/build-engine builds it).
            """,
        subcommands: [DemoCommand.self, SynthCommand.self, Check.self, Train.self, LocationPriorCommand.self, TrainCandidatesCommand.self, CandidatesCommand.self, Predict.self, MergePredictions.self, Evaluate.self, Serve.self, Launch.self, Inspect.self, Convert.self, Doctor.self, Bench.self])

    static func main() async {
        // Past a file-size limit, write() should fail with EFBIG (and the error be reported) rather
        // than the process be killed by SIGXFSZ.
        signal(SIGXFSZ, SIG_IGN)
        await main(nil)
    }
}

/// Where to find the engine library; shared by every command that runs a network.
struct EngineOptions: ParsableArguments {
    @Option(name: .long, help: "Path of libwillis_engine.so (default: $WILLIS_ENGINE, then .build-engine/ near the binary or the current directory).")
    var engine: String?

    @Option(name: .long, help: "libtorch CPU threads (default: libtorch's own choice, one per physical core).")
    var threads: Int?

    func load() throws -> Engine {
        let engine = try Engine.load(path: engine)
        if let threads { try Torch.setThreadCount(threads) }
        return engine
    }
}

import Torch
