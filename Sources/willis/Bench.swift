import ArgumentParser
import Bench
import Foundation
import Torch

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time Willis against the Python reference on the same machine.",
        subcommands: [BenchEngine.self, BenchDICOM.self])
}

struct BenchEngine: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "engine",
        abstract: "The reference UNet3D's training step (batch 2) and inference forward, Willis vs PyTorch.",
        discussion: """
            Runs the same model, optimizer and loss in Willis and then in Python PyTorch \
            (tools/bench/engine_reference.py) with the same thread count, and prints both median \
            times and their ratio. Both sides must use the same libtorch version: build the engine \
            against the Python environment you compare with.
            """)

    @OptionGroup var engineOptions: EngineOptions

    @Flag(help: "One size (32x64x64) and few iterations: about a minute on 2 cores.")
    var quick = false

    @Option(help: "Volume sizes DxHxW, comma-separated.")
    var sizes: String = "32x64x64,64x128x128"

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
        if cudnnBenchmark { try Torch.setCudnnBenchmark(true) }
        let chosenSizes = try (quick ? "32x64x64" : sizes).split(separator: ",").map { try EngineBenchmark.Size(parsing: String($0)) }
        let iters = iterations ?? (quick ? 3 : 2)
        let roundCount = max(1, rounds ?? 3)
        let threads = Torch.threadCount
        print("willis bench engine — \(Date()) — \(MachineInfo.cpuModel), \(ProcessInfo.processInfo.activeProcessorCount) cores")
        print("libtorch \(engine.torchVersion) (\(engine.path)), device \(dev), threads \(threads), autocast \(autocast), warmup \(warmup), \(roundCount) rounds of \(iters) iterations")
        let benchmark = EngineBenchmark(sizes: chosenSizes, device: dev, warmup: warmup, iterations: iters, autocast: amp)
        var ourRows: [BenchRow] = [], referenceRows: [BenchRow] = []
        let py = PythonReference.locate(python: python)
        var args = ["--sizes", chosenSizes.map(\.description).joined(separator: ","), "--device", device,
                    "--threads", String(threads), "--warmup", String(warmup), "--iters", String(iters),
                    "--autocast", autocast]
        if cudnnBenchmark { args.append("--cudnn-benchmark") }
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
