import Foundation
import Torch

/// Paths and helpers shared by the test targets.
public enum TestPaths {
    /// The package root (tests run from it under `swift test`).
    public static let root: String = {
        var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while dir.path != "/" {
            if FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) { return dir.path }
            dir.deleteLastPathComponent()
        }
        return FileManager.default.currentDirectoryPath
    }()

    /// The Python that writes oracle fixtures (never used by Willis itself).
    public static var python: String {
        ProcessInfo.processInfo.environment["WILLIS_PYTHON"] ?? "\(root)/.venv/bin/python"
    }

    /// Where generated fixtures go; large ones are made at test time, not committed.
    public static var fixtures: String {
        ProcessInfo.processInfo.environment["WILLIS_FIXTURES"] ?? "\(root)/.build-fixtures"
    }
}

public enum OracleError: Error, CustomStringConvertible {
    case failed(String)
    public var description: String {
        switch self { case let .failed(m): return m }
    }
}

/// Runs a committed oracle script under the fixture Python and waits for it.
@discardableResult
public func runOracle(_ script: String, _ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: TestPaths.python)
    process.arguments = ["\(TestPaths.root)/tools/oracles/\(script)"] + arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    do {
        try process.run()
    } catch {
        throw OracleError.failed("cannot run \(TestPaths.python) (run scripts/setup to make the .venv with torch): \(error)")
    }
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw OracleError.failed("oracle \(script) failed (\(process.terminationStatus)):\n\(output)")
    }
    return output
}

private let fixtureLock = NSLock()

/// The path of a fixture made by `generator`, running it when the file is missing or older
/// than the generator script (so an edited oracle never leaves stale fixtures behind).
public func fixture(_ name: String, generator: String) throws -> String {
    fixtureLock.lock()
    defer { fixtureLock.unlock() }
    let path = "\(TestPaths.fixtures)/\(name)"
    let script = "\(TestPaths.root)/tools/oracles/\(generator)"
    func modified(_ p: String) -> Date? { (try? FileManager.default.attributesOfItem(atPath: p))?[.modificationDate] as? Date }
    if let made = modified(path), let written = modified(script), made >= written { return path }
    // Made here, not by each generator: a suite run alone on a fresh clone (`--filter`) must not depend on
    // an earlier test's generator having made the folder.
    try FileManager.default.createDirectory(atPath: TestPaths.fixtures, withIntermediateDirectories: true)
    try runOracle(generator, [TestPaths.fixtures])
    return path
}

/// Loads the engine once for the test process.
public func engine() throws -> Engine { try Engine.shared() }

/// Largest |a - b| / max(|b|, floor) over two equal-length arrays.
public func maxRelativeError(_ a: [Float], _ b: [Float], floor: Float = 1e-6) -> Float {
    precondition(a.count == b.count, "compared arrays differ in length: \(a.count) vs \(b.count)")
    var worst: Float = 0
    for (x, y) in zip(a, b) {
        worst = max(worst, abs(x - y) / max(abs(y), floor))
    }
    return worst
}

/// Largest |a - b| over two equal-length arrays.
public func maxAbsoluteError(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "compared arrays differ in length: \(a.count) vs \(b.count)")
    return zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
}

/// One folder per test process holding every test's temporary directory, removed when the process exits.
private let testScratch: URL = {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("willis-tests-\(ProcessInfo.processInfo.processIdentifier)")
    try? FileManager.default.removeItem(at: dir)
    atexit { try? FileManager.default.removeItem(at: testScratch) }
    return dir
}()

/// A fresh temporary directory for one test (removed with the others when the test process exits).
public func temporaryDirectory() throws -> String {
    let dir = testScratch.appendingPathComponent(UUID().uuidString)
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.path
}
