import AsyncHTTPClient
import Foundation
import Hummingbird
import HummingbirdTesting
import Inference
import NIOCore
import Server
import TestSupport
import Testing

/// Debian's chromium, headless, against the app on loopback.
enum Chromium {
    static let path = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }

    struct Run { var stdout: String; var consoleLines: [String] }

    /// Runs chromium on `url` with `arguments` (e.g. --screenshot=FILE, --dump-dom), waiting for it.
    /// `consoleLines` are what pages wrote to the console, errors and uncaught exceptions included.
    static func run(_ url: String, _ arguments: [String], windowSize: String = "1280,1000") throws -> Run {
        guard let path else { throw OracleError.failed("chromium is not installed (scripts/setup installs Debian's chromium)") }
        let profile = try temporaryDirectory()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
                             "--user-data-dir=\(profile)", "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000",
                             "--window-size=\(windowSize)"] + arguments + [url]
        // Files, not pipes: a full pipe would block chromium.
        let outPath = "\(profile)/stdout", errPath = "\(profile)/stderr"
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        guard let out = FileHandle(forWritingAtPath: outPath), let err = FileHandle(forWritingAtPath: errPath) else {
            throw OracleError.failed("cannot open \(outPath)")
        }
        process.standardOutput = out
        process.standardError = err
        try process.run()
        process.waitUntilExit()
        try out.close()
        try err.close()
        let stdout = FileManager.default.contents(atPath: outPath) ?? Data(), stderr = FileManager.default.contents(atPath: errPath) ?? Data()
        let lines = String(decoding: stderr, as: UTF8.self).split(separator: "\n").map(String.init).filter { $0.contains(":CONSOLE") }
        return Run(stdout: String(decoding: stdout, as: UTF8.self), consoleLines: lines)
    }
}

struct ScreenshotProbe: Decodable {
    struct Box: Decodable { var distinctGreys: Int; var notBackground: Double; var red: Double }
    var width: Int
    var height: Int
    var boxes: [Box]

    static func probe(_ png: String, boxes: [String]) throws -> ScreenshotProbe {
        let out = "\(try temporaryDirectory())/probe.json"
        try runOracle("screenshot_probe.py", [out, png] + boxes)
        return try JSONDecoder().decode(ScreenshotProbe.self, from: Data(contentsOf: URL(fileURLWithPath: out)))
    }
}

@Suite(.serialized) struct BrowserTests {
    func live<T>(_ settings: ServeSettings, _ body: @Sendable @escaping (Int, WillisServer) async throws -> T) async throws -> T {
        let server = WillisServer(settings: settings)
        let app = Application(router: server.router(), configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        return try await app.test(.live) { client in try await body(try #require(client.port), server) }
    }

    /// The worklist and a series page load in a real browser with every image decoded, the MIPs drawn
    /// where the layout puts them, and nothing on the console. A page that does log is caught, so the
    /// console check can fail.
    @Test func pagesRenderInHeadlessChromium() async throws {
        let control = "\(try temporaryDirectory())/control.html"
        try Data(#"<html><body><script>console.error("deliberate"); notAFunction();</script></body></html>"#.utf8)
            .write(to: URL(fileURLWithPath: control))
        let caught = try Chromium.run("file://\(control)", ["--dump-dom"])
        #expect(caught.consoleLines.contains { $0.contains("deliberate") } && caught.consoleLines.contains { $0.contains("Uncaught") },
                "the console is captured: \(caught.consoleLines)")

        let f = try ServerFixture.get()
        let r = try #require(f.results.results().filter { $0.status == .ok }.max { ($0.aneurysmPresent ?? 0) < ($1.aneurysmPresent ?? 0) })
        let shots = ProcessInfo.processInfo.environment["WILLIS_SCREENSHOT_DIR"]
        try await live(f.settings()) { port, _ in
            let base = "http://127.0.0.1:\(port)"
            let dir = try temporaryDirectory()

            let worklist = try Chromium.run("\(base)/", ["--dump-dom"])
            #expect(worklist.consoleLines.isEmpty, "\(worklist.consoleLines)")
            #expect(worklist.stdout.contains("data-images=\"0/0\""), "the page's script ran")
            #expect(worklist.stdout.contains("data-key=\"\(r.key)\""))
            let worklistShot = "\(dir)/worklist.png"
            let w = try Chromium.run("\(base)/", ["--screenshot=\(worklistShot)"], windowSize: "1280,420")
            #expect(w.consoleLines.isEmpty, "\(w.consoleLines)")

            let page = try Chromium.run("\(base)/series/\(r.key)", ["--dump-dom"])
            #expect(page.consoleLines.isEmpty, "\(page.consoleLines)")
            #expect(page.stdout.contains("data-images=\"4/4\""), "three MIPs and a slice decoded: \(page.stdout.prefix(300))")
            let seriesShot = "\(dir)/series.png"
            let s = try Chromium.run("\(base)/series/\(r.key)", ["--screenshot=\(seriesShot)"])
            #expect(s.consoleLines.isEmpty, "\(s.consoleLines)")
            // The axial MIP sits under the title at the left; the space right of the three MIPs is empty page.
            let probe = try ScreenshotProbe.probe(seriesShot, boxes: ["40,160,270,380", "920,160,1270,330"])
            #expect(probe.width == 1280 && probe.height == 1000)
            #expect(probe.boxes[0].distinctGreys > 20 && probe.boxes[0].notBackground > 0.2, "the axial MIP rendered: \(probe.boxes[0])")
            #expect(probe.boxes[1].notBackground < 0.01, "beside it, blank page: \(probe.boxes[1])")
            if let shots {
                for (from, to) in [(worklistShot, "serve-worklist.png"), (seriesShot, "serve-series.png")] {
                    try? FileManager.default.removeItem(atPath: "\(shots)/\(to)")
                    try FileManager.default.copyItem(atPath: from, toPath: "\(shots)/\(to)")
                }
            }
        }
    }

    /// About 200 concurrent requests for pages and images and 5 uploads, on loopback through a real
    /// HTTP client: every one answered correctly and uploads predicted one at a time, twice; then rounds
    /// of requests leave the server's memory where they found it.
    @Test func theServerHoldsUpUnderLoad() async throws {
        let f = try ServerFixture.get()
        let results = try f.copy()
        let upload = try makeZip(try seriesEntries(f.seriesFolders[3]))
        var settings = f.settings(results)
        settings.concurrentJobs = 1
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: 200)
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        do {
            try await load(client, settings, f, results, upload)
        } catch {
            try await client.shutdown()
            throw error
        }
        try await client.shutdown()
    }

    func load(_ client: HTTPClient, _ settings: ServeSettings, _ f: ServerFixture, _ results: ResultsFolder, _ upload: Data) async throws {
        let recorded = results.results().filter { $0.status == .ok }
        try await live(settings) { port, server in
            let base = "http://127.0.0.1:\(port)"
            var uris = ["/", "/api/series", "/openapi.json", "/assets/app.css", "/assets/app.js", "/upload"]
            for r in recorded {
                uris += ["/series/\(r.key)", "/series/\(r.key)/axial.png", "/series/\(r.key)/coronal.png", "/series/\(r.key)/sagittal.png",
                         "/series/\(r.key)/slices/3.png", "/series/\(r.key)/slices/9.png", "/api/series/\(r.key)"]
            }
            func round(uploads: Int = 5) async throws -> (ok: Int, failures: [String]) {
                try await withThrowingTaskGroup(of: (String, Int, Int).self) { group in
                    for n in 0..<200 {
                        let uri = uris[n % uris.count]
                        group.addTask {
                            let response = try await client.execute(HTTPClientRequest(url: base + uri), timeout: .seconds(60))
                            let body = try await response.body.collect(upTo: 16 << 20)
                            return (uri, Int(response.status.code), body.readableBytes)
                        }
                    }
                    for _ in 0..<uploads {
                        group.addTask {
                            var request = HTTPClientRequest(url: base + "/api/predict")
                            request.method = .POST
                            request.headers.add(name: "Content-Type", value: "application/zip")
                            request.body = .bytes(ByteBuffer(bytes: upload))
                            let response = try await client.execute(request, timeout: .seconds(60))
                            let body = try await response.body.collect(upTo: 1 << 20)
                            return ("/api/predict", Int(response.status.code), body.readableBytes)
                        }
                    }
                    var ok = 0, failures: [String] = []
                    for try await (uri, status, bytes) in group {
                        if (status == 200 || (uri == "/api/predict" && status == 202)) && bytes > 0 { ok += 1 } else { failures.append("\(uri): \(status), \(bytes) bytes") }
                    }
                    return (ok, failures)
                }
            }
            let first = try await round()
            #expect(first.ok == 205 && first.failures.isEmpty, "\(first.failures)")
            #expect(server.jobs.waitUntilIdle())
            let second = try await round()
            #expect(second.ok == 205 && second.failures.isEmpty, "\(second.failures)")
            #expect(server.jobs.waitUntilIdle())
            #expect(server.jobs.mostRunningAtOnce == 1, "uploads ran one at a time")
            // Growth after the load: memory handed back to the allocator is returned to the system first
            // (malloc_trim), then rounds of page and image requests must leave it where they found it.
            // Rounds with predictions in them swing by tens of MB (threads, libtorch's per-thread caches)
            // around a level that does not climb (measured by hand over 40 rounds: RESULTS of issue 7).
            func trimmedResident() -> Int {
                if let trim = dlsym(nil, "malloc_trim") { _ = unsafeBitCast(trim, to: (@convention(c) (Int) -> Int32).self)(0) }
                return ProcessMemory.resident().current
            }
            var readings: [Int] = []
            for _ in 0..<4 {
                let again = try await round(uploads: 0)
                #expect(again.ok == 200 && again.failures.isEmpty, "\(again.failures)")
                readings.append(trimmedResident())
            }
            print("load test: after the rounds with uploads, page and image rounds leave resident memory at "
                  + readings.map { "\($0 >> 20) MB" }.joined(separator: ", "))
            #expect(readings[3] - readings[1] < 8 << 20, "memory grew by \((readings[3] - readings[1]) >> 20) MB over two rounds of 200 requests")
            #expect(results.result(f.cases[3].seriesInstanceUID)?.status == .ok)
        }
    }
}
