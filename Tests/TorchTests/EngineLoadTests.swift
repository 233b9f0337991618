import Foundation
import TestSupport
import Testing
import Torch

@Suite struct EngineLoadTests {
    @Test func missingLibraryNamesThePathAndHowToBuild() throws {
        do {
            _ = try Engine.open(path: "/nonexistent/libwillis_engine.so")
            Issue.record("opened a missing library")
        } catch let TorchError.engineUnavailable(path, reason) {
            #expect(path == "/nonexistent/libwillis_engine.so")
            #expect(reason.contains("scripts/build-engine"))
        }
    }

    @Test func aLibraryThatIsNotAnEngineIsRefused() throws {
        let candidates = ["/lib/x86_64-linux-gnu/libz.so.1", "/usr/lib/x86_64-linux-gnu/libz.so.1", "/lib/aarch64-linux-gnu/libz.so.1"]
        let zlib = try #require(candidates.first { FileManager.default.fileExists(atPath: $0) })
        do {
            _ = try Engine.open(path: zlib)
            Issue.record("opened zlib as an engine")
        } catch let TorchError.engineUnavailable(_, reason) {
            #expect(reason.contains("not a Willis engine library"))
        }
    }

    @Test func aFileThatIsNotALibraryIsRefused() throws {
        let dir = try temporaryDirectory()
        let path = "\(dir)/libwillis_engine.so"
        try Data("not an ELF file".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: TorchError.self) { try Engine.open(path: path) }
    }

    @Test func theLoadedEngineReportsItsLibtorch() throws {
        let engine = try Engine.shared()
        #expect(engine.torchVersion.hasPrefix("2."))
        #expect(try engine.buildInfo().contains("cpu_capability"))
    }
}
