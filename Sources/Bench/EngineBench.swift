import Anatomy
import Foundation
import Models
import Torch

/// One timed stage of a benchmark.
public struct BenchRow: Codable, Sendable {
    public var stage: String
    public var size: String
    public var batch: Int
    /// Median seconds over the timed iterations.
    /// Seconds of each timed iteration.
    public var samples: [Double]

    public init(stage: String, size: String, batch: Int, samples: [Double]) {
        (self.stage, self.size, self.batch, self.samples) = (stage, size, batch, samples)
    }

    public var medianSeconds: Double {
        let sorted = samples.sorted()
        guard !sorted.isEmpty else { return .nan }
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }

    public var minSeconds: Double { samples.min() ?? .nan }

    /// Joins the samples of rows for the same stage and size (from several rounds).
    public static func merge(_ rows: [BenchRow]) -> [BenchRow] {
        var merged: [BenchRow] = []
        for row in rows {
            if let i = merged.firstIndex(where: { $0.stage == row.stage && $0.size == row.size }) {
                merged[i].samples += row.samples
            } else {
                merged.append(row)
            }
        }
        return merged
    }
}

/// A network's training step and inference forward, timed on Willis's engine: the reference UNet3D
/// (Adam, sigmoid + BCELoss, as the notebook), or the stand-alone second stage's candidate classifier
/// with its location head at a given depth (AdamW, the aneurysm's BCE with logits plus the artery's
/// cross-entropy, on a batch of 32 cubes of 24³, as `willis train-candidates` steps).
public struct EngineBenchmark: Sendable {
    public enum Model: String, Sendable, CaseIterable {
        case unet
        case candidateClassifier = "candidate-classifier"
    }
    public struct Size: Sendable, CustomStringConvertible {
        public var depth, height, width: Int
        public init(_ d: Int, _ h: Int, _ w: Int) { (depth, height, width) = (d, h, w) }
        public init(parsing text: String) throws {
            let parts = text.split(separator: "x").compactMap { Int($0) }
            guard parts.count == 3, parts.allSatisfy({ $0 > 0 && $0 % 16 == 0 }) else {
                throw TorchError.invalidArgument("size '\(text)' must be DxHxW with each a positive multiple of 16")
            }
            self.init(parts[0], parts[1], parts[2])
        }
        public var description: String { "\(depth)x\(height)x\(width)" }
    }

    public var sizes: [Size]
    public var model: Model = .unet
    public var device: Device
    public var batch = 2
    public var warmup = 1
    public var iterations = 3
    /// Mixed precision for the forward pass (nil for float32).
    public var autocast: DType?
    /// Weights and inputs in channels-last 3D layout.
    public var channelsLast = false
    /// The candidate classifier's depth (its residual convolutions at 12³ and 6³).
    public var classifierDepth = 1

    public init(sizes: [Size], device: Device, batch: Int = 2, warmup: Int = 1, iterations: Int = 3, autocast: DType? = nil) {
        self.sizes = sizes
        self.device = device
        self.batch = batch
        self.warmup = warmup
        self.iterations = iterations
        self.autocast = autocast
    }

    func timed(_ body: () throws -> Void) throws -> [Double] {
        for _ in 0..<warmup { try body() }
        try Torch.synchronize(device)
        var times: [Double] = []
        for _ in 0..<iterations {
            let start = DispatchTime.now().uptimeNanoseconds
            try body()
            try Torch.synchronize(device)  // CUDA work is asynchronous; wait before reading the clock.
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return times
    }

    /// The candidate classifier's cube edge and batch in `willis train-candidates`'s recipe.
    public static let candidatePatch = CandidateClassifier.defaultPatchSize, candidateBatch = 32

    public func run() throws -> [BenchRow] {
        try Torch.manualSeed(0)
        if model == .candidateClassifier { return try runCandidateClassifier() }
        var rows: [BenchRow] = []
        for size in sizes {
            let model = try UNet3D(device: device)
            if channelsLast { try model.store.convert(to: .channelsLast3d) }
            let optimizer = try Optimizer(.adam(), parameters: model.store.parameters, learningRate: 1e-3)
            var x = try Tensor.randn([batch, 1, size.depth, size.height, size.width], device: device)
            if channelsLast { x = try x.contiguous(.channelsLast3d) }
            let y = try Tensor.rand([batch, 14], device: device).gt(0.5).to(.float32)

            func forward(_ input: Tensor) throws -> Tensor {
                guard let autocast else { return try model(input) }
                return try Torch.withAutocast(device, dtype: autocast) { try model(input) }
            }

            let train = try timed {
                model.store.isTraining = true
                try optimizer.zeroGrad()
                let out = try forward(x)
                // BCELoss is unsafe under autocast; the loss runs in float32, as on the Python side.
                let loss = try out.to(.float32).binaryCrossEntropy(target: y)
                try loss.backward()
                try optimizer.step()
            }
            rows.append(BenchRow(stage: "train_step", size: size.description, batch: batch, samples: train))
            let x1 = try x.narrow(dim: 0, start: 0, length: 1).contiguous(channelsLast ? .channelsLast3d : .contiguous)
            let infer = try timed {
                model.store.isTraining = false
                _ = try Torch.withNoGrad { try forward(x1) }
            }
            rows.append(BenchRow(stage: "forward", size: size.description, batch: 1, samples: infer))
        }
        return rows
    }

    /// The parameter count of the candidate classifier this benchmark times.
    public func candidateClassifierParameterCount() throws -> Int {
        let net = try CandidateClassifier(patchSize: Self.candidatePatch, depth: classifierDepth, namesLocations: true, device: device)
        return net.store.parameters.map(\.count).reduce(0, +)
    }

    func runCandidateClassifier() throws -> [BenchRow] {
        let p = Self.candidatePatch, n = Self.candidateBatch
        let net = try CandidateClassifier(patchSize: p, depth: classifierDepth, namesLocations: true, device: device)
        net.autocast = autocast
        let optimizer = try Optimizer(.adamW(), parameters: net.store.parameters, learningRate: 1e-3)
        let x = try Tensor.randn([n, 1, p, p, p], device: device)
        let positions = try Tensor.randn([n, 3], device: device) * 30
        let y = try Tensor.rand([n], device: device).gt(0.5).to(.float32)
        let names = try Tensor((0..<n).map { Int64($0 % LocationLabel.locations.count) }, shape: [n], device: device)
        let train = try timed {
            net.store.isTraining = true
            try optimizer.zeroGrad()
            let out = try net.outputs(x, positions: positions)
            guard let locations = out.locations else { throw TorchError.invalidArgument("the classifier has no location head") }
            let loss = try out.logits.binaryCrossEntropyWithLogits(target: y) + locations.crossEntropy(target: names)
            try loss.backward()
            try optimizer.step()
        }
        let size = "\(p)x\(p)x\(p)"
        let infer = try timed {
            net.store.isTraining = false
            _ = try Torch.withNoGrad { try net.outputs(x, positions: positions) }
        }
        return [BenchRow(stage: "train_step", size: size, batch: n, samples: train),
                BenchRow(stage: "forward", size: size, batch: n, samples: infer)]
    }
}

/// Runs the Python reference side of a benchmark (tools/bench/*.py) in its own process.
public struct PythonReference: Sendable {
    public var python: String
    public var scriptsDirectory: String

    public init(python: String, scriptsDirectory: String) {
        self.python = python
        self.scriptsDirectory = scriptsDirectory
    }

    /// The interpreter and tools folder of a checkout: `$WILLIS_PYTHON` or `.venv/bin/python`.
    public static func locate(python: String?) -> PythonReference {
        let root = FileManager.default.currentDirectoryPath
        let py = python ?? ProcessInfo.processInfo.environment["WILLIS_PYTHON"] ?? "\(root)/.venv/bin/python"
        return PythonReference(python: py, scriptsDirectory: "\(root)/tools/bench")
    }

    public struct Output: Decodable {
        public var torch: String
        public var threads: Int
        public var rows: [BenchRow]
        /// The timed network's parameter count, where the script reports it.
        public var parameters: Int?
    }

    /// Runs a script for its side effects (e.g. writing benchmark input); fails on a non-zero exit.
    public func runScript(_ script: String, _ arguments: [String]) throws {
        _ = try output(script: script, arguments: arguments)
    }

    /// Runs a script that prints {"seconds": [...]} as its last line.
    public func runTimings(_ script: String, _ arguments: [String]) throws -> [Double] {
        struct Timings: Decodable { var seconds: [Double] }
        let text = try output(script: script, arguments: arguments)
        let last = text.split(separator: "\n").last.map(String.init) ?? ""
        guard let t = try? JSONDecoder().decode(Timings.self, from: Data(last.utf8)) else {
            throw TorchError.invalidArgument("Python reference \(script) printed no timings: \(last)")
        }
        return t.seconds
    }

    public func output(script: String, arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["\(scriptsDirectory)/\(script)"] + arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        do {
            try process.run()
        } catch {
            throw TorchError.invalidArgument("cannot start the Python reference \(python): \(error.localizedDescription) (run scripts/setup, or pass --python)")
        }
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw TorchError.invalidArgument("Python reference \(script) failed: \(String(decoding: stderr, as: UTF8.self))")
        }
        return String(decoding: stdout, as: UTF8.self)
    }

    public func run(script: String, arguments: [String]) throws -> Output {
        let text = try output(script: script, arguments: arguments)
        let lastLine = text.split(separator: "\n").last.map(String.init) ?? ""
        do {
            return try JSONDecoder().decode(Output.self, from: Data(lastLine.utf8))
        } catch {
            throw TorchError.invalidArgument("Python reference \(script) printed no result: \(lastLine)")
        }
    }
}

/// Side-by-side table of Willis's and the reference's times: medians, and the
/// fastest iteration of each (less disturbed by other load on a shared machine).
public func comparisonTable(ours: [BenchRow], reference: [BenchRow]) -> String {
    func ms(_ s: Double) -> String { String(format: "%10.1f", s * 1000) }
    var lines = ["stage        size          batch  willis ms  pytorch ms   ratio   willis min  pytorch min   ratio"]
    for row in ours {
        let match = reference.first { $0.stage == row.stage && $0.size == row.size }
        var line = row.stage.padding(toLength: 13, withPad: " ", startingAt: 0)
            + row.size.padding(toLength: 14, withPad: " ", startingAt: 0)
            + String(format: "%5d", row.batch) + ms(row.medianSeconds)
        if let match {
            line += "  " + ms(match.medianSeconds) + String(format: "%8.3f", row.medianSeconds / match.medianSeconds)
            line += "  " + ms(row.minSeconds) + "   " + ms(match.minSeconds) + String(format: "%8.3f", row.minSeconds / match.minSeconds)
        } else {
            line += "           -       -  " + ms(row.minSeconds)
        }
        lines.append(line)
    }
    lines.append("ratio = willis / pytorch: below 1 means Willis is faster")
    return lines.joined(separator: "\n")
}
