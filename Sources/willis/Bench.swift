import ArgumentParser
import Bench
import DICOM
import Dispatch
import Foundation
import Inference
import Models
import Preprocessing
import Synth
import Torch
import Training
import VolumeCore

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time Willis against the Python reference on the same machine.",
        subcommands: [BenchPipeline.self, BenchThroughput.self, BenchEngine.self, BenchDICOM.self, BenchDistributed.self, BenchDotFilter.self])
}

struct BenchEngine: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "engine",
        abstract: "A network's training step and inference forward, Willis vs PyTorch: the reference UNet3D (batch 2), or the second stage's candidate classifier (32 cubes).",
        discussion: """
            Runs the same model, optimizer and loss in Willis and then in Python PyTorch \
            (tools/bench/engine_reference.py) with the same thread count, and prints both median \
            times and their ratio. Both sides must use the same libtorch version: build the engine \
            against the Python environment you compare with.
            """)

    @OptionGroup var engineOptions: EngineOptions

    @Flag(help: "One size (32x64x64) and few iterations: about a minute on 2 cores.")
    var quick = false

    @Option(help: "unet (the reference UNet3D at --sizes) or candidate-classifier (willis train-candidates's network with its location head, 32 cubes of 24³; --sizes is not read).")
    var model: String = "unet"

    @Option(help: "Volume sizes DxHxW, comma-separated.")
    var sizes: String = "32x64x64,64x128x128"

    @Option(help: "With --model candidate-classifier: the classifier's depth (1 to 4, as train-candidates' --depth); 2 is experiments/candidate-classifier.toml's.")
    var classifierDepth: Int?

    @Option(help: "cpu, cuda or cuda:N.")
    var device: String = "cpu"

    @Option(help: "Timed iterations per stage and round (the median of all is reported).")
    var iterations: Int?

    @Option(help: "Rounds, alternating Willis and the reference, so that drift in machine speed hits both alike.")
    var rounds: Int?

    @Option(help: "Untimed warm-up iterations per stage (oneDNN builds its kernels in the first two).")
    var warmup: Int = 2

    @Option(help: "Mixed precision for the forward pass: none, bf16 or fp16 (CUDA).")
    var autocast: String = "none"

    @Flag(help: "cuDNN autotuning (both sides).")
    var cudnnBenchmark = false

    @Flag(help: "TF32 tensor-core math for float32 matmul and convolution on CUDA (both sides).")
    var tf32 = false

    @Flag(help: "Weights and inputs in channels-last 3D layout (both sides).")
    var channelsLast = false

    @Option(help: "Python with torch for the reference side (default: $WILLIS_PYTHON or .venv/bin/python).")
    var python: String?

    @Flag(help: "Skip the Python reference.")
    var noReference = false

    @Option(help: "Also write the results as JSON to this path.")
    var json: String?

    func run() throws {
        let engine = try engineOptions.load()
        let dev = try Device(parsing: device)
        let amp: DType?
        switch autocast {
        case "none": amp = nil
        case "bf16": amp = .bfloat16
        case "fp16": amp = .float16
        default: throw ValidationError("--autocast must be none, bf16 or fp16")
        }
        guard let network = EngineBenchmark.Model(rawValue: model) else {
            throw ValidationError("--model must be \(EngineBenchmark.Model.allCases.map(\.rawValue).joined(separator: " or "))")
        }
        if network == .candidateClassifier, channelsLast {
            throw ValidationError("--channels-last is timed for the UNet only, not for --model candidate-classifier")
        }
        if network == .unet, classifierDepth != nil {
            throw ValidationError("--classifier-depth is read with --model candidate-classifier only")
        }
        let classifierDepth = self.classifierDepth ?? 2
        do {
            try CandidateClassifier.checkSizes(baseFilters: CandidateClassifier.defaultBaseFilters, patchSize: EngineBenchmark.candidatePatch,
                                               contextScale: nil, depth: classifierDepth)
        } catch {
            throw ValidationError("--classifier-depth: \(error)")
        }
        if cudnnBenchmark { try Torch.setCudnnBenchmark(true) }
        if tf32 { try Torch.setAllowTF32(true) }
        let chosenSizes = try (quick ? "32x64x64" : sizes).split(separator: ",").map { try EngineBenchmark.Size(parsing: String($0)) }
        let iters = iterations ?? (quick ? 3 : 2)
        let roundCount = max(1, rounds ?? 3)
        let threads = Torch.threadCount
        print("willis bench engine — \(Date()) — \(MachineInfo.cpuModel), \(ProcessInfo.processInfo.activeProcessorCount) cores")
        print("libtorch \(engine.torchVersion) (\(engine.path)), model \(network.rawValue)\(network == .candidateClassifier ? " at depth \(classifierDepth)" : ""), device \(dev), threads \(threads), autocast \(autocast), tf32 \(tf32), channels-last \(channelsLast), warmup \(warmup), \(roundCount) rounds of \(iters) iterations")
        var benchmark = EngineBenchmark(sizes: chosenSizes, device: dev, warmup: warmup, iterations: iters, autocast: amp)
        benchmark.channelsLast = channelsLast
        benchmark.model = network
        benchmark.classifierDepth = classifierDepth
        var ourRows: [BenchRow] = [], referenceRows: [BenchRow] = []
        let py = PythonReference.locate(python: python)
        var args = ["--sizes", chosenSizes.map(\.description).joined(separator: ","), "--device", device,
                    "--threads", String(threads), "--warmup", String(warmup), "--iters", String(iters),
                    "--autocast", autocast, "--model", network.rawValue, "--classifier-depth", String(classifierDepth)]
        if cudnnBenchmark { args.append("--cudnn-benchmark") }
        if tf32 { args.append("--tf32") }
        if channelsLast { args.append("--channels-last") }
        let classifierParameters = network == .candidateClassifier ? try benchmark.candidateClassifierParameterCount() : nil
        for _ in 0..<roundCount {
            ourRows += try benchmark.run()
            guard !noReference else { continue }
            let output = try py.run(script: "engine_reference.py", arguments: args)
            if referenceRows.isEmpty {
                print("reference: PyTorch \(output.torch) (\(py.python)), threads \(output.threads)")
                // "2.13.0+cpu" and "2.13.0" are the same release; the local tag names the wheel flavour.
                if output.torch.split(separator: "+").first != engine.torchVersion.split(separator: "+").first {
                    print("warning: the reference uses torch \(output.torch) but the engine uses \(engine.torchVersion); the ratio compares different libtorch builds")
                }
            }
            referenceRows += output.rows
            // A ratio of two different networks' times would mean nothing.
            if let ours = classifierParameters, output.parameters != ours {
                throw ValidationError("the reference built a classifier of \(output.parameters.map(String.init) ?? "unreported") parameters, Willis one of \(ours): the two sides differ")
            }
        }
        if let classifierParameters {
            print("candidate classifier: \(classifierParameters) parameters\(noReference ? "" : " on both sides")")
        }
        let ours = BenchRow.merge(ourRows), reference = BenchRow.merge(referenceRows)
        print(comparisonTable(ours: ours, reference: reference))
        if let json {
            struct Result: Encodable { var torch: String; var device: String; var threads: Int; var willis: [BenchRow]; var reference: [BenchRow] }
            let data = try JSONEncoder().encode(Result(torch: engine.torchVersion, device: device, threads: threads, willis: ours, reference: reference))
            try data.write(to: URL(fileURLWithPath: json))
        }
    }
}

struct BenchDICOM: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dicom",
        abstract: "A full-size CTA-like series, folder to HU volume: Willis vs pydicom (the notebook's loop) vs SimpleITK.",
        discussion: """
            Writes (once) 300 slices of 512×512 16-bit CT as uncompressed, JPEG-LS lossless and JPEG 2000 \
            lossless series under .build-bench/dicom (tools/bench/make_dicom_series.py), then times, with a \
            warm page cache: Willis's SeriesLoader (to Float32 HU); the notebook's pydicom loop (stored \
            values, as the notebook does) and the same loop with the HU rescale; SimpleITK's \
            ImageSeriesReader; and the floor, reading the same bytes on all cores without decoding.
            """)

    @Flag(help: "64 slices of 256×256 instead of 300 of 512×512, and fewer repeats.")
    var quick = false

    @Option(help: "Timed repeats per measurement (the median is reported).")
    var repeats: Int?

    @Option(help: "Python with pydicom and SimpleITK (default: $WILLIS_PYTHON or .venv/bin/python).")
    var python: String?

    @Option(help: "Which series: uncompressed, jpegls, j2k (comma-separated).")
    var variants: String = "uncompressed,jpegls,j2k"

    @Flag(help: "Time Willis only (for profiling): no floor, no Python.")
    var willisOnly = false

    func run() throws {
        let py = PythonReference.locate(python: python)
        let root = FileManager.default.currentDirectoryPath + "/.build-bench/" + (quick ? "dicom-quick" : "dicom")
        let (slices, size) = quick ? (64, 256) : (300, 512)
        try py.runScript("make_dicom_series.py", [root, "--slices", String(slices), "--size", String(size)])
        let n = repeats ?? (quick ? 3 : 5)
        print("willis bench dicom — \(Date()) — \(MachineInfo.cpuModel), \(ProcessInfo.processInfo.activeProcessorCount) cores")
        print("series: \(slices) slices of \(size)×\(size), 16-bit CT; warm page cache; median of \(n)")
        print("variant        MB on disk   willis s   notebook s  notebook+HU s   SimpleITK s   read floor s   +output s   notebook/willis   sitk/willis   willis/floor+output")
        for variant in variants.split(separator: ",").map(String.init) {
            let folder = "\(root)/\(variant)"
            let ours = try DICOMBenchmark.willis(folder, repeat: n)
            if willisOnly {
                print(variant.padding(toLength: 15, withPad: " ", startingAt: 0) + String(format: "%21.3f", DICOMBenchmark.median(ours.seconds)))
                continue
            }
            let floor = try DICOMBenchmark.floor(folder, repeat: n)
            let floorOut = try DICOMBenchmark.floorWithOutput(folder, voxels: ours.voxels, repeat: n)
            let notebook = try py.runTimings("dicom_reference.py", [folder, "--mode", "notebook", "--repeat", String(n)])
            let notebookHU = try py.runTimings("dicom_reference.py", [folder, "--mode", "notebook_hu", "--repeat", String(n)])
            let sitk = try py.runTimings("dicom_reference.py", [folder, "--mode", "sitk", "--repeat", String(n)])
            let w = DICOMBenchmark.median(ours.seconds), f = DICOMBenchmark.median(floor.seconds)
            let fo = DICOMBenchmark.median(floorOut)
            let nb = DICOMBenchmark.median(notebook), nbHU = DICOMBenchmark.median(notebookHU), s = DICOMBenchmark.median(sitk)
            print(variant.padding(toLength: 15, withPad: " ", startingAt: 0)
                + String(format: "%10.1f %10.3f %12.3f %13.3f %13.3f %14.3f %11.3f %17.1f× %12.2f× %20.2f×",
                         Double(floor.bytes) / 1e6, w, nb, nbHU, s, f, fo, nb / w, s / w, w / fo))
        }
    }
}

struct BenchPipeline: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pipeline",
        abstract: "Every stage of predicting one series, Willis vs the reference notebook's Python path, with floors and ratios.",
        discussion: """
            On one CTA-like series (300 slices of 512×512, uncompressed; --quick: 64 of 256×256) written by \
            tools/bench/make_dicom_series.py, times: series load → HU; reference-mode preprocessing \
            (clip, scale, anti-aliased resize to 64×128×128); one training step (batch 2) and one forward of \
            the reference UNet3D at 64×128×128; end-to-end prediction of the series (load + preprocess + \
            forward; the reference is the notebook's predict_single_scan); and the peak memory of a \
            `willis predict` process against the same Python path's. The reference side is pydicom, \
            scikit-image and PyTorch with the same libtorch and thread count (tools/bench/pipeline_reference.py, \
            engine_reference.py). Floors: reading the files and filling the output (load), reading the volume \
            once (preprocess), counted FLOPs at this machine's measured matmul rate (network).
            """)

    @OptionGroup var engineOptions: EngineOptions

    @Flag(help: "A 64×256×256 series and fewer repeats: about a minute.")
    var quick = false

    @Option(help: "Timed repeats per stage (the median is reported).")
    var repeats: Int?

    @Option(help: "cpu, cuda or cuda:N (the network stages; load and preprocessing run on the CPU).")
    var device: String = "cpu"

    @Option(help: "Python with pydicom, scikit-image and torch (default: $WILLIS_PYTHON or .venv/bin/python).")
    var python: String?

    @Option(help: "Use this series folder instead of writing the standard one (needs no pydicom; e.g. from willis synth --size full).")
    var series: String?

    @Flag(help: "Skip the reference stages that need pydicom and scikit-image (load, preprocess, predict, memory); the network stages still run in PyTorch.")
    var noPydicom = false

    @Option(help: "Time only this Willis stage (load, preprocess or forward), for profiling: no reference, no floor.")
    var only: String?

    func run() throws {
        if let only { return try profile(only) }
        let engine = try engineOptions.load()
        let dev = try Device(parsing: device)
        let py = PythonReference.locate(python: python)
        let n = repeats ?? (quick ? 2 : 3)
        let folder: String
        if let series {
            folder = series
        } else {
            let root = FileManager.default.currentDirectoryPath + "/.build-bench/" + (quick ? "dicom-quick" : "dicom")
            let (slices, size) = quick ? (64, 256) : (300, 512)
            try py.runScript("make_dicom_series.py", [root, "--slices", String(slices), "--size", String(size)])
            folder = "\(root)/uncompressed"
        }
        let threads = Torch.threadCount
        print("willis bench pipeline — \(Date()) — \(MachineInfo.cpuModel), \(ProcessInfo.processInfo.activeProcessorCount) cores")

        // Willis, in this process.
        let median = DICOMBenchmark.median
        let load = try PipelineBenchmark.timed(n) { _ = try SeriesLoader().load(folder) }
        let volume = try SeriesLoader().load(folder).volume
        print("libtorch \(engine.torchVersion), device \(dev), \(threads) threads; series \(volume.shape.depth)×\(volume.rows)×\(volume.columns) from \(folder); median of \(n)")
        let rawBytes = try SeriesLoader.files(at: folder).reduce(0) { $0 + ((try? FileManager.default.attributesOfItem(atPath: $1)[.size] as? Int) ?? 0) }
        let loadFloor = try DICOMBenchmark.floorWithOutput(folder, voxels: volume.count, repeat: n)
        let preprocess = PipelineBenchmark.timed(n) { _ = ReferencePreprocessing.apply(volume) }
        let preprocessFloor = PipelineBenchmark.readFloor(volume, repeat: n)
        let network = try EngineBenchmark(sizes: [try .init(parsing: "64x128x128")], device: dev, warmup: 1, iterations: n).run()
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("willis-bench-\(ProcessInfo.processInfo.processIdentifier)").path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        try Torch.manualSeed(0)
        try UNet3D().store.save(to: "\(scratch)/weights.safetensors")
        let predictor = try Predictor(weights: "\(scratch)/weights.safetensors", device: dev)
        let prepared = predictor.prepare(try SeriesLoader().load(folder))
        let foldedForward = try PipelineBenchmark.timed(n) { _ = try predictor.infer(prepared) }
        let predict = try PipelineBenchmark.timed(n) { _ = try predictor.predict(series: folder) }
        let memory = try willisPredictMemory(folder: folder, weights: "\(scratch)/weights.safetensors", scratch: scratch)

        // The reference, in its own processes.
        struct Reference: Decodable { var torch: String; var threads: Int; var stages: [String: [Double]]; var matmul_gflops: Double?; var max_rss_bytes: Int; var baseline_rss_bytes: Int? }
        func reference(_ extra: [String]) throws -> Reference {
            let text = try py.output(script: "pipeline_reference.py", arguments: [folder, "--repeat", String(n), "--threads", String(threads), "--device", device] + extra)
            let last = text.split(separator: "\n").last.map(String.init) ?? ""
            do { return try JSONDecoder().decode(Reference.self, from: Data(last.utf8)) } catch {
                throw ValidationError("pipeline_reference.py printed no result: \(last)")
            }
        }
        let ref = noPydicom ? try reference(["--stages", "forward,matmul"]) : try reference([])
        let refMemory = noPydicom ? nil : try reference(["--rss-only"])
        let refEngine = try py.run(script: "engine_reference.py", arguments: ["--sizes", "64x128x128", "--device", device, "--threads", String(threads),
                                                                             "--warmup", "1", "--iters", String(n)])
        if ref.torch.split(separator: "+").first != engine.torchVersion.split(separator: "+").first {
            print("warning: the reference uses torch \(ref.torch) but the engine uses \(engine.torchVersion)")
        }
        let peak = (ref.matmul_gflops ?? .nan) * 1e9
        // FLOPs of the reference UNet3D at 64×128×128 (tools/bench/unet_flops.py): forward batch 1, train step batch 2.
        let forwardFlops = 119.3e9, trainFlops = 714.2e9
        // GPU: the network floor is FLOPs at the card's matmul rate; on the CPU, at the cores'.
        func row(_ stage: String, _ ours: Double, _ theirs: Double, _ floor: Double, _ target: String) {
            print(stage.padding(toLength: 30, withPad: " ", startingAt: 0)
                  + String(format: "%10.3f %12.3f %9.2f× %10.3f %9.2f×   ", ours, theirs, theirs / ours, floor, ours / floor) + target)
        }
        print("stage                          willis s  reference s   speed-up    floor s  willis/floor   target")
        let networkForward = network.first { $0.stage == "forward" }?.medianSeconds ?? .nan
        let networkTrain = network.first { $0.stage == "train_step" }?.medianSeconds ?? .nan
        let refForward = median(ref.stages["forward"] ?? [])
        let refTrain = refEngine.rows.first { $0.stage == "train_step" }?.medianSeconds ?? .nan
        row("series load → HU", median(load), median(ref.stages["load"] ?? []), median(loadFloor), "≥ 10× (uncompressed)")
        row("preprocess (reference mode)", median(preprocess), median(ref.stages["preprocess"] ?? []), median(preprocessFloor), "≥ 20× (resize)")
        row("train step, batch 2", networkTrain, refTrain, trainFlops / peak, "≥ 1.0× on CPU")
        row("forward, batch 1", networkForward, refForward, forwardFlops / peak, "")
        row("forward, BN folded, ch.-last", median(foldedForward), refForward, forwardFlops / peak, "(as predict runs it)")
        row("predict one series end to end", median(predict), median(ref.stages["predict"] ?? []),
            median(loadFloor) + median(preprocessFloor) + forwardFlops / peak, "≥ 5× on CPU")
        let modelBytes = 5_648_078 * 4
        let memoryTarget = 2 * rawBytes + modelBytes
        let refPeak = refMemory.map { Double($0.max_rss_bytes) } ?? .nan
        let refOver = refMemory.map { Double($0.max_rss_bytes - ($0.baseline_rss_bytes ?? 0)) } ?? .nan
        print(String(format: "peak memory of predict        %7.0f MB %9.0f MB %9.2f×  (over runtime: Willis %.0f MB, reference %.0f MB; target ≤ 2 × %.0f MB series + %.0f MB model = %.0f MB)",
                     Double(memory.peak) / 1e6, refPeak / 1e6, refPeak / Double(max(memory.peak, 1)),
                     Double(memory.peak - memory.baseline) / 1e6, refOver / 1e6,
                     Double(rawBytes) / 1e6, Double(modelBytes) / 1e6, Double(memoryTarget) / 1e6))
        print(String(format: "matmul peak %.0f GFLOP/s (libtorch %@, 2048³ float32); speed-up = reference / Willis", ref.matmul_gflops ?? .nan, ref.torch))
    }

    func profile(_ stage: String) throws {
        let folder = FileManager.default.currentDirectoryPath + "/.build-bench/" + (quick ? "dicom-quick" : "dicom") + "/uncompressed"
        let n = repeats ?? 5
        let seconds: [Double]
        switch stage {
        case "load": seconds = try PipelineBenchmark.timed(n) { _ = try SeriesLoader().load(folder) }
        case "preprocess":
            let volume = try SeriesLoader().load(folder).volume
            seconds = PipelineBenchmark.timed(n) { _ = ReferencePreprocessing.apply(volume) }
        case "forward":
            _ = try engineOptions.load()
            try Torch.manualSeed(0)
            let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("willis-profile-\(ProcessInfo.processInfo.processIdentifier).safetensors").path
            defer { try? FileManager.default.removeItem(atPath: scratch) }
            try UNet3D().store.save(to: scratch)
            let predictor = try Predictor(weights: scratch)
            let input = [Float](repeating: 0.3, count: 64 * 128 * 128)
            seconds = try PipelineBenchmark.timed(n) { _ = try predictor.infer(input) }
        default: throw ValidationError("--only must be load, preprocess or forward")
        }
        print(stage + ": " + seconds.map { String(format: "%.3f", $0) }.joined(separator: " ") + " s")
    }

    /// Peak memory of a `willis predict` process on one series, and its memory before the series.
    func willisPredictMemory(folder: String, weights: String, scratch: String) throws -> (peak: Int, baseline: Int) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
        process.arguments = ["predict", folder, "--weights", weights, "--workers", "1", "--queue", "1", "--out", "\(scratch)/s.csv", "--device", device]
            + (engineOptions.engine.map { ["--engine", $0] } ?? [])
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        // "peak memory 612 MB (402 MB before the first series: …)"
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("peak memory") }) else {
            throw ValidationError("willis predict printed no memory line: \(text)")
        }
        let numbers = line.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
        guard numbers.count >= 2 else { throw ValidationError("unreadable memory line: \(line)") }
        return (numbers[0] * 1_000_000, numbers[1] * 1_000_000)
    }
}

struct BenchThroughput: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "throughput",
        abstract: "Batch prediction over a folder of synthetic series: series per minute with 1 and 2 workers, vs the notebook's loop.",
        discussion: """
            Writes (once) 50 medium synthetic series (96×224×224, uncompressed) under .build-bench/medium50, then \
            predicts them all with `willis predict`'s pipeline (reading and preparing later series while the \
            network runs) at each worker count, and with the notebook's predict_single_scan in a Python loop \
            (tools/bench/pipeline_reference.py --predict-folder), same weights, same libtorch and threads.
            """)

    @OptionGroup var engineOptions: EngineOptions

    @Option(help: "Series to synthesise and predict.") var count: Int = 50
    @Option(help: "Worker counts to try, comma-separated.") var workers: String = "1,2"
    @Option(help: "Python with pydicom, scikit-image and torch (default: $WILLIS_PYTHON or .venv/bin/python).") var python: String?

    func run() throws {
        let engine = try engineOptions.load()
        let root = FileManager.default.currentDirectoryPath + "/.build-bench/medium\(count)"
        if !FileManager.default.fileExists(atPath: "\(root)/train.csv") {
            var options = SynthOptions(count: count, size: .medium, seed: 50)
            options.syntaxes = .uncompressed
            try SynthDataset.generate(options, into: root)
        }
        let series = "\(root)/series"
        let folders = try FileManager.default.contentsOfDirectory(atPath: series).sorted().map { "\(series)/\($0)" }
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("willis-throughput-\(ProcessInfo.processInfo.processIdentifier).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        try Torch.manualSeed(0)
        try UNet3D().store.save(to: scratch)
        let predictor = try Predictor(weights: scratch)
        print("willis bench throughput — \(Date()) — \(MachineInfo.cpuModel), \(ProcessInfo.processInfo.activeProcessorCount) cores")
        print("libtorch \(engine.torchVersion), \(Torch.threadCount) threads; \(folders.count) medium series (96×224×224), reference mode 64×128×128")
        var results: [(String, Double)] = []
        for w in workers.split(separator: ",").compactMap({ Int($0) }) where w > 0 {
            var prepare = 0.0
            let start = DispatchTime.now().uptimeNanoseconds
            BatchPrediction(workers: w, queueDepth: 2).run(folders, predictor: predictor) { _, outcome in prepare += outcome.prepareSeconds }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            results.append(("willis, \(w) worker(s)", seconds))
            print(String(format: "willis, %d worker(s): %.1f s, %.1f series/min (load + prepare %.3f s per series on its worker)",
                         w, seconds, Double(folders.count) / seconds * 60, prepare / Double(folders.count)))
        }
        let py = PythonReference.locate(python: python)
        let text = try py.output(script: "pipeline_reference.py", arguments: [series, "--predict-folder", "--threads", String(Torch.threadCount)])
        struct Reference: Decodable { var stages: [String: [Double]] }
        guard let last = text.split(separator: "\n").last, let ref = try? JSONDecoder().decode(Reference.self, from: Data(last.utf8)),
              let seconds = ref.stages["predict_folder"]?.first else { throw ValidationError("pipeline_reference.py printed no result") }
        print(String(format: "notebook loop (predict_single_scan): %.1f s, %.1f series/min", seconds, Double(folders.count) / seconds * 60))
        for (name, s) in results { print(String(format: "  %@: %.2f× the notebook's throughput", name, seconds / s)) }
    }
}

struct BenchDistributed: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "distributed",
        abstract: "Data-parallel training steps on 1 and N processes, Willis vs PyTorch DistributedDataParallel, with the all-reduce's share.",
        discussion: """
            Each side trains the reference UNet3D (5.65 M parameters) on fixed random inputs, batch B per \
            process, on 1 process and on N (Gloo on loopback; NCCL with --device cuda), the cores shared \
            evenly among the processes. Prints per-step time, samples per second, Willis's gradient \
            all-reduce time (after backward) and the ratio to PyTorch DDP (whose all-reduce overlaps backward).
            """)

    @OptionGroup var engineOptions: EngineOptions
    @Option(help: "Processes of the parallel run.") var processes: Int = 2
    @Option(help: "Input size DxHxW.") var inputShape: String = "32x64x64"
    @Option(help: "Batch per process.") var batch: Int = 2
    @Option(help: "Timed steps (after warm-up).") var steps: Int = 8
    @Option(help: "Warm-up steps.") var warmup: Int = 2
    @Option(help: "cpu, or cuda (one GPU per process).") var device: String = "cpu"
    @Option(help: "Python with torch for the reference side (default: $WILLIS_PYTHON or .venv/bin/python).") var python: String?
    @Flag(help: "Skip the Python reference.") var noReference = false
    @Flag(help: .hidden) var worker = false

    struct WorkerResult: Codable { var step: [Double]; var allReduce: [Double]; var parameters: Int; var bytes: Int }

    func run() throws {
        let engine = try engineOptions.load()
        if worker { return try runWorker() }
        let cores = ProcessInfo.processInfo.activeProcessorCount
        print("willis bench distributed — \(Date()) — \(MachineInfo.cpuModel), \(cores) cores, libtorch \(engine.torchVersion), \(device)")
        print("reference UNet3D, input \(inputShape), batch \(batch) per process, \(warmup) warm-up + \(steps) timed steps")
        let py = PythonReference.locate(python: python)
        struct Row { var world: Int; var threads: Int; var ours: WorkerResult; var reference: [Double]? }
        var rows: [Row] = []
        for world in [1, processes] {
            let threads = max(1, cores / world)
            let ours = try launchWorkers(world: world, threads: threads)
            var reference: [Double]?
            if !noReference {
                struct Ref: Decodable { var torch: String; var step: [Double] }
                let text = try py.output(script: "ddp_reference.py", arguments: [
                    "--world", String(world), "--size", inputShape, "--batch", String(batch), "--steps", String(steps),
                    "--warmup", String(warmup), "--threads", String(threads), "--device", device])
                let last = text.split(separator: "\n").last.map(String.init) ?? ""
                reference = (try? JSONDecoder().decode(Ref.self, from: Data(last.utf8)))?.step
            }
            rows.append(Row(world: world, threads: threads, ours: ours, reference: reference))
        }
        func ms(_ v: [Double]) -> Double { DICOMBenchmark.median(v) * 1000 }
        print("\n| processes × threads | Willis step ms | of which all-reduce ms | Willis samples/s | PyTorch DDP step ms | PyTorch samples/s | Willis / PyTorch time |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for r in rows {
            let ours = ms(r.ours.step), reduce = ms(r.ours.allReduce)
            let rate = Double(r.world * batch) / (ours / 1000)
            let refText = r.reference.map { String(format: "%.0f | %.2f | %.2f", ms($0), Double(r.world * batch) / (ms($0) / 1000), ours / ms($0)) } ?? "– | – | –"
            print(String(format: "| %d × %d | %.0f | %.1f | %.2f | ", r.world, r.threads, ours, reduce, rate) + refText + " |")
        }
        if let a = rows.first, let b = rows.last, rows.count == 2 {
            let rateA = Double(batch) / DICOMBenchmark.median(a.ours.step), rateB = Double(b.world * batch) / DICOMBenchmark.median(b.ours.step)
            print(String(format: "\nWillis 1 → %d processes: %.2f× the samples per second; gradients all-reduced per step: %.1f MB (%d parameters)",
                         b.world, rateB / rateA, Double(b.ours.bytes) / 1e6, b.ours.parameters))
        }
    }

    func launchWorkers(world: Int, threads: Int) throws -> WorkerResult {
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let port = try Launch.freePort()
        var processes: [(Process, Pipe)] = []
        for rank in 0..<world {
            let p = Process(), out = Pipe()
            p.executableURL = URL(fileURLWithPath: executable)
            p.arguments = ["bench", "distributed", "--worker", "--input-shape", inputShape, "--batch", String(batch),
                           "--steps", String(steps), "--warmup", String(warmup), "--device", device, "--threads", String(threads)]
                + (engineOptions.engine.map { ["--engine", $0] } ?? [])
            p.environment = ProcessInfo.processInfo.environment.merging(
                DistributedEnvironment(rank: rank, worldSize: world, localRank: rank, localWorldSize: world, masterPort: port).variables) { $1 }
            p.standardOutput = out
            try p.run()
            processes.append((p, out))
        }
        var result: WorkerResult?
        for (rank, (p, out)) in processes.enumerated() {
            let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            guard p.terminationStatus == 0 else { throw ValidationError("benchmark worker \(rank) of \(world) failed (\(p.terminationStatus))") }
            if rank == 0, let last = text.split(separator: "\n").last {
                result = try JSONDecoder().decode(WorkerResult.self, from: Data(last.utf8))
            }
        }
        guard let result else { throw ValidationError("benchmark worker 0 printed no result") }
        return result
    }

    /// One rank of the Willis side: the reference training step with the gradient all-reduce.
    func runWorker() throws {
        let world = try DistributedEnvironment.from()
        var dev = try Device(parsing: device)
        if device == "cuda", let world { dev = try Device(parsing: "cuda:\(world.localRank)") }
        let parallel = try world.map { DataParallel(group: try ProcessGroup($0, backend: device == "cuda" ? .nccl : .gloo, timeout: 300)) }
        let size = try EngineBenchmark.Size(parsing: inputShape)
        try Torch.manualSeed(0)
        let model = try UNet3D(device: dev)
        try parallel?.synchronize(model.store.entries.map(\.tensor))
        let optimizer = try Optimizer(.adam(), parameters: model.store.parameters, learningRate: 1e-3)
        try Torch.manualSeed(1 + UInt64(world?.rank ?? 0))
        let x = try Tensor.randn([batch, 1, size.depth, size.height, size.width], device: dev)
        let y = try Tensor.rand([batch, 14], device: dev).gt(0.5).to(.float32)
        var steps: [Double] = [], reduces: [Double] = []
        let share = 1.0 / Double(world?.worldSize ?? 1)
        for i in 0..<(warmup + self.steps) {
            let start = DispatchTime.now().uptimeNanoseconds
            model.store.isTraining = true
            try optimizer.zeroGrad()
            let loss = try model(x).binaryCrossEntropy(target: y) * share
            try loss.backward()
            let before = parallel?.reduceSeconds ?? 0
            try parallel?.reduceGradients(model.store.parameters)
            try optimizer.step()
            try Torch.synchronize(dev)
            if i >= warmup {
                steps.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
                reduces.append((parallel?.reduceSeconds ?? 0) - before)
            }
        }
        if world?.rank ?? 0 == 0 {
            let result = WorkerResult(step: steps, allReduce: reduces, parameters: model.store.parameters.map(\.count).reduce(0, +),
                                      bytes: model.store.parameters.map { $0.count * 4 }.reduce(0, +))
            print(String(decoding: try JSONEncoder().encode(result), as: UTF8.self))
        }
    }
}

struct BenchDotFilter: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dot-filter",
        abstract: "The Hessian dot filter on one medium CTA series: Willis's DotFilter vs scipy and numpy.",
        discussion: """
            Writes (once) one medium synthetic CTA series (willis synth --size medium --seed 41, its first \
            case; 96×224×224) under .build-bench/dot-filter, reads it to HU, scales it as the analysis does \
            ((HU − 35) / 400, vessels about 1) and measures the vessel-bright voxels (above 0.25) at 0.5, 0.8, \
            1.2 and 1.8 mm: Willis's DotFilter, and tools/analysis/hessian_blobs.py's definition (scipy's \
            gaussian_filter, numpy's eigvalsh) on the same image and mask (tools/bench/dot_filter_reference.py). \
            Then the whole candidate source on the HU volume (the head's interior 16 mm deep, the scale, the \
            filter, the 20 strongest maxima) both ways. Prints the median of each, their ratios, the largest \
            difference between the two filters' outputs, how many of the 20 candidates agree, and the floor: \
            the multiply-adds of the fifteen one-dimensional passes per scale at the 2048³-matmul rate.
            """)

    @Option(help: "Timed repeats (the median is reported).")
    var repeats = 3

    @Option(help: "Python with scipy (default: $WILLIS_PYTHON or .venv/bin/python).")
    var python: String?

    func run() throws {
        let py = PythonReference.locate(python: python)
        let root = FileManager.default.currentDirectoryPath + "/.build-bench/dot-filter"
        if !FileManager.default.fileExists(atPath: "\(root)/train.csv") {
            var options = SynthOptions()
            (options.count, options.size, options.seed, options.syntaxes) = (1, .medium, 41, .uncompressed)
            try SynthDataset.generate(options, into: root)
        }
        let folder = try FileManager.default.contentsOfDirectory(atPath: "\(root)/series").sorted().first
            .map { "\(root)/series/\($0)" } ?? ""
        let series = try SeriesLoader().load(folder)
        guard series.modality == "CT" || series.modality == "CTA" else {
            throw ValidationError("\(folder) is \(series.modality), not CT: delete \(root) to rewrite it")
        }
        let volume = series.volume
        let shape = [volume.shape.depth, volume.shape.height, volume.shape.width]
        let spacing = [volume.geometry.spacing.z, volume.geometry.spacing.y, volume.geometry.spacing.x]
        let image = DotFilter.vesselBright(volume, contrast: .ct, region: [])
        let mask = image.map { $0 > 0.25 }
        let filter = DotFilter()
        var ours: [Float] = []
        let seconds = PipelineBenchmark.timed(repeats) { ours = filter.measure(image, shape: shape, spacing: spacing, mask: mask) }
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("willis-dot-\(ProcessInfo.processInfo.processIdentifier)").path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        try image.withUnsafeBytes { Data($0) }.write(to: URL(fileURLWithPath: "\(scratch)/image.f32"))
        try Data(mask.map { $0 ? 1 : 0 }).write(to: URL(fileURLWithPath: "\(scratch)/mask.u8"))
        try volume.voxels.withUnsafeBytes { Data($0) }.write(to: URL(fileURLWithPath: "\(scratch)/hu.f32"))
        let arguments = [scratch, "--shape", shape.map(String.init).joined(separator: ","),
                         "--spacing", spacing.map { String($0) }.joined(separator: ","), "--repeat", String(repeats)]
        let reference = try py.runTimings("dot_filter_reference.py", arguments + ["--stage", "measure"])
        let theirs = try Data(contentsOf: URL(fileURLWithPath: "\(scratch)/measure.f32")).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        let difference = zip(ours, theirs).map { abs($0 - $1) }.max() ?? .nan
        // The whole candidate source: interior, scale, filter, the 20 strongest maxima.
        var found: [(point: Vector3, value: Float)] = []
        let candidateSeconds = PipelineBenchmark.timed(repeats) { found = filter.candidates(volume, contrast: .ct, count: 20) }
        let referenceCandidates = try py.runTimings("dot_filter_reference.py", arguments + ["--stage", "candidates"])
        struct Listed: Decodable { var indices: [Int]; var values: [Float] }
        let listed = try JSONDecoder().decode(Listed.self, from: Data(contentsOf: URL(fileURLWithPath: "\(scratch)/candidates.json")))
        let (h, w) = (shape[1], shape[2])
        var agreeing = 0
        for (f, v) in zip(found, listed.indices) {
            let p = volume.geometry.patient(i: Double(v % w), j: Double(v / w % h), k: Double(v / (h * w)))
            if (f.point - p).length < 1e-6 { agreeing += 1 }
        }
        // Floor: per scale, fifteen one-dimensional passes over the volume, each a multiply-add per kernel tap.
        let voxels = Double(image.count)
        let multiplyAdds = filter.scalesMM.reduce(0.0) { total, s in
            let taps = spacing.map { Double(2 * Int(4 * s / $0 + 0.5) + 1) }
            return total + voxels * (3 * taps[0] + 6 * taps[1] + 6 * taps[2])
        }
        let w0 = DICOMBenchmark.median(seconds), r = DICOMBenchmark.median(reference)
        let c = DICOMBenchmark.median(candidateSeconds), rc = DICOMBenchmark.median(referenceCandidates)
        print("willis bench dot-filter — \(Date()) — \(MachineInfo.cpuModel), \(ProcessInfo.processInfo.activeProcessorCount) cores")
        print("series: \(shape.map(String.init).joined(separator: "×")) at " + spacing.map { String(format: "%.3f", $0) }.joined(separator: "×")
              + " mm, \(mask.filter { $0 }.count) vessel-bright voxels; scales \(filter.scalesMM) mm; median of \(repeats)")
        print(String(format: "filter:     willis %.3f s   scipy+numpy %.3f s   scipy/willis %.2f×   largest difference %.2g (outputs up to %.3g)",
                     w0, r, r / w0, difference, ours.max() ?? 0))
        print(String(format: "candidates: willis %.3f s   scipy+numpy %.3f s   scipy/willis %.2f×   the same 20 strongest, in order: %d of %d",
                     c, rc, rc / c, agreeing, listed.indices.count))
        print(String(format: "floor: %.2f G multiply-adds in the passes; %.3f s at 208 GFLOP/s (BENCHMARKS.md's matmul rate); willis/floor %.1f×",
                     multiplyAdds / 1e9, 2 * multiplyAdds / 208e9, w0 / (2 * multiplyAdds / 208e9)))
    }
}
