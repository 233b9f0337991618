import Foundation
import Synth
import TestSupport
import Testing
import Torch
import Training

/// The `willis` binary that scripts/test builds before the tests (`swift build --product willis`).
func willisBinary() throws -> String {
    let path = "\(TestPaths.root)/.build/debug/willis"
    guard FileManager.default.isExecutableFile(atPath: path) else {
        throw OracleError.failed("\(path) is missing: build it with `swift build --product willis` (scripts/test does)")
    }
    return path
}

/// A willis process with its output in files.
final class WillisProcess {
    let process = Process()
    let stdout: String, stderr: String

    init(_ arguments: [String], environment: [String: String] = [:], folder: String) throws {
        stdout = "\(folder)/stdout-\(UUID().uuidString)"
        stderr = "\(folder)/stderr-\(UUID().uuidString)"
        _ = FileManager.default.createFile(atPath: stdout, contents: nil)
        _ = FileManager.default.createFile(atPath: stderr, contents: nil)
        process.executableURL = URL(fileURLWithPath: try willisBinary())
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for key in DistributedEnvironment(rank: 0, worldSize: 1).variables.keys { env[key] = nil }
        env["WILLIS_ENGINE"] = try Engine.shared().path
        for (k, v) in environment { env[k] = v }
        process.environment = env
        process.standardOutput = FileHandle(forWritingAtPath: stdout)
        process.standardError = FileHandle(forWritingAtPath: stderr)
        try process.run()
    }

    var output: String { (try? String(contentsOfFile: stdout, encoding: .utf8)) ?? "" }
    var errors: String { (try? String(contentsOfFile: stderr, encoding: .utf8)) ?? "" }

    /// Waits for the exit, at most `seconds` (then kills it: a hang is a failure, not a wait forever).
    @discardableResult
    func wait(upTo seconds: Double) -> Int32? {
        let end = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < end { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return nil
        }
        return process.terminationStatus
    }

    static func run(_ arguments: [String], folder: String, upTo seconds: Double = 600) throws -> (status: Int32?, output: String) {
        let p = try WillisProcess(arguments, folder: folder)
        let status = p.wait(upTo: seconds)
        return (status, p.output + p.errors)
    }
}

/// Data-parallel training: two processes over Gloo on loopback, started the way launchers start them.
@Suite(.serialized) struct DistributedTests {
    struct Record: Decodable { var epoch: Int; var trainLoss: Double; var validationLoss: Double; var worldSize: Int?; var replicasIdentical: Bool? }

    static func records(_ run: String) throws -> [Record] {
        try String(contentsOfFile: "\(run)/metrics.jsonl", encoding: .utf8).split(separator: "\n")
            .map { try JSONDecoder().decode(Record.self, from: Data($0.utf8)) }
    }

    /// ‖a − b‖ / ‖a‖ over every tensor of two weights files.
    static func relativeDifference(_ a: String, _ b: String) throws -> Double {
        let (x, y) = (try SafeTensorsFile(path: a), try SafeTensorsFile(path: b))
        #expect(Set(x.names) == Set(y.names))
        var diff = 0.0, norm = 0.0
        for name in x.names where !name.hasPrefix("__") {
            let (u, v) = (try x.tensor(name).floats(), try y.tensor(name).floats())
            for (p, q) in zip(u, v) {
                diff += Double(p - q) * Double(p - q)
                norm += Double(p) * Double(p)
            }
        }
        return (diff / max(norm, 1e-30)).squareRoot()
    }

    static let data: Result<String, Error> = Result {
        let root = try temporaryDirectory()
        // No vessel-label files: every loss term then normalises over the global batch (see DetectorTrainer.losses).
        var options = SynthOptions(count: 9, size: .small, seed: 23)
        options.segmentationFraction = 0
        try SynthDataset.generate(options, into: "\(root)/data")
        return "\(root)/data"
    }

    static func train(_ out: String, epochs: Int, batch: Int, resume: Bool = false) -> [String] {
        ["train", "--data", (try? data.get()) ?? "", "--out", out, "--epochs", String(epochs), "--batch-size", String(batch),
         "--model", "detector", "--base-filters", "4", "--input-shape", "16x32x32", "--preprocessing", "improved",
         "--spacing", "4.8", "--folds", "3", "--threads", "1"] + (resume ? ["--resume"] : [])
    }

    /// Two processes at batch 1 each follow one process at batch 2: the same losses, weights within
    /// summation-order noise, and bit-identical weights on both ranks after every epoch. A run begun on
    /// two processes resumes on one.
    @Test func twoProcessesTrainAsOneWithTheSameGlobalBatch() throws {
        _ = try Self.data.get()
        let root = try temporaryDirectory()
        let one = try WillisProcess.run(Self.train("\(root)/one", epochs: 2, batch: 2), folder: root)
        #expect(one.status == 0, "\(one.output)")
        let two = try WillisProcess.run(["launch", "--nproc", "2", "--"] + Self.train("\(root)/two", epochs: 2, batch: 1), folder: root)
        #expect(two.status == 0, "\(two.output)")
        #expect(two.output.contains("data-parallel over 2 processes (gloo)"))
        let (a, b) = (try Self.records("\(root)/one"), try Self.records("\(root)/two"))
        #expect(a.count == 2 && b.count == 2, "rank 0 alone writes the log: \(b.count) lines")
        for (x, y) in zip(a, b) {
            #expect(abs(x.trainLoss - y.trainLoss) <= 1e-4 * abs(x.trainLoss), "epoch \(x.epoch): \(x.trainLoss) vs \(y.trainLoss)")
            #expect(abs(x.validationLoss - y.validationLoss) <= 1e-4 * abs(x.validationLoss))
            #expect(y.worldSize == 2 && y.replicasIdentical == true && x.worldSize == nil)
        }
        let difference = try Self.relativeDifference("\(root)/one/model.safetensors", "\(root)/two/model.safetensors")
        #expect(difference < 1e-3, "weights differ by \(difference) (relative L2)")

        // One epoch on two processes, then the second on one process from its checkpoint, equals the same
        // on one process throughout (the schedule depends on --epochs, so both histories are the same).
        for (name, launcher, batch) in [("mixed", ["launch", "--nproc", "2", "--"], 1), ("single", [], 2)] {
            let first = try WillisProcess.run(launcher + Self.train("\(root)/\(name)", epochs: 1, batch: batch), folder: root)
            #expect(first.status == 0, "\(first.output)")
            let resumed = try WillisProcess.run(Self.train("\(root)/\(name)", epochs: 2, batch: 2, resume: true), folder: root)
            #expect(resumed.status == 0 && resumed.output.contains("resumed from"), "\(resumed.output)")
        }
        let (mixed, single) = (try Self.records("\(root)/mixed"), try Self.records("\(root)/single"))
        #expect(mixed.map(\.epoch) == [1, 2] && single.map(\.epoch) == [1, 2])
        for (x, y) in zip(single, mixed) {
            #expect(abs(x.trainLoss - y.trainLoss) <= 1e-4 * abs(x.trainLoss), "epoch \(x.epoch): \(x.trainLoss) vs \(y.trainLoss)")
        }
        #expect(try Self.relativeDifference("\(root)/single/model.safetensors", "\(root)/mixed/model.safetensors") < 1e-3)
    }

    /// A rank that dies mid-training makes the other exit with an error naming the failed collective,
    /// instead of waiting for it.
    @Test func aKilledRankStopsTheOtherWithAClearError() throws {
        _ = try Self.data.get()
        let root = try temporaryDirectory()
        let port = 20000 + Int(getpid() % 20000)
        let arguments = Self.train("\(root)/run", epochs: 500, batch: 1) + ["--dist-timeout", "30"]
        func env(_ rank: Int) -> [String: String] {
            DistributedEnvironment(rank: rank, worldSize: 2, localRank: rank, localWorldSize: 2, masterPort: port).variables
        }
        let rank0 = try WillisProcess(arguments, environment: env(0), folder: root)
        let rank1 = try WillisProcess(arguments, environment: env(1), folder: root)
        // Kill rank 1 once training is under way (rank 0 has logged an epoch).
        let end = Date().addingTimeInterval(120)
        while !rank0.output.contains("epoch 1/500") && rank0.process.isRunning && Date() < end { Thread.sleep(forTimeInterval: 0.05) }
        #expect(rank0.output.contains("epoch 1/500"), "\(rank0.output)\(rank0.errors)")
        kill(rank1.process.processIdentifier, SIGKILL)
        rank1.wait(upTo: 10)
        let status = rank0.wait(upTo: 60)
        #expect(status != nil, "rank 0 did not exit after its peer died")
        #expect(status != 0)
        let message = rank0.errors
        #expect(message.contains("rank 0:") && message.contains("failed"), "\(message)")
    }

    /// What launchers set is read strictly; one process is not a distributed run.
    @Test func theLaunchEnvironmentIsValidated() throws {
        #expect(try DistributedEnvironment.from([:]) == nil)
        #expect(try DistributedEnvironment.from(["WORLD_SIZE": "1", "RANK": "0"]) == nil)
        let env = try #require(try DistributedEnvironment.from(["WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2",
                                                                 "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500"]))
        #expect(env == DistributedEnvironment(rank: 3, worldSize: 4, localRank: 1, localWorldSize: 2, masterAddress: "10.0.0.1", masterPort: 29500))
        #expect(try DistributedEnvironment.from(env.variables) == env, "what a launcher sets reads back")
        for bad in [["WORLD_SIZE": "two"], ["WORLD_SIZE": "2", "RANK": "2", "MASTER_ADDR": "a", "MASTER_PORT": "1"],
                    ["WORLD_SIZE": "2", "RANK": "0", "MASTER_PORT": "29500"], ["WORLD_SIZE": "2", "RANK": "0", "MASTER_ADDR": "a", "MASTER_PORT": "70000"]] {
            #expect(throws: DistributedError.self, "\(bad)") { try DistributedEnvironment.from(bad) }
        }
    }

    /// Every sample of a global batch goes to exactly one rank, in order, as evenly as the count allows.
    @Test func globalBatchesAreSharedWithoutRepeatsOrGaps() {
        for world in 1...5 {
            for count in 0...17 {
                let shares = (0..<world).map { DataParallel.share(of: count, rank: $0, worldSize: world) }
                #expect(shares.flatMap { Array($0) } == Array(0..<count), "count \(count), world \(world)")
                let sizes = shares.map(\.count)
                #expect((sizes.max() ?? 0) - (sizes.min() ?? 0) <= 1)
            }
        }
    }
}
