import DICOM
import Foundation
import Hummingbird
import HummingbirdTesting
import Inference
import Server
import TestSupport
import Torch
import Testing
import ZIPFoundation

/// A zip made in memory from (path, bytes) entries, paths written as given; `links` are symlink entries.
func makeZip(_ entries: [(String, Data)], links: [(String, String)] = [], compressed: Bool = true) throws -> Data {
    let archive = try Archive(data: Data(), accessMode: .create)
    for (path, data) in entries {
        try archive.addEntry(with: path, type: .file, uncompressedSize: Int64(data.count),
                             compressionMethod: compressed ? .deflate : .none) { position, size in
            data.subdata(in: Int(position)..<Int(position) + size)
        }
    }
    for (path, target) in links {
        let data = Data(target.utf8)
        try archive.addEntry(with: path, type: .symlink, uncompressedSize: Int64(data.count)) { position, size in
            data.subdata(in: Int(position)..<Int(position) + size)
        }
    }
    return archive.data ?? Data()
}

/// The files of a series folder as zip entries under `prefix`.
func seriesEntries(_ folder: String, prefix: String = "series/") throws -> [(String, Data)] {
    try FileManager.default.contentsOfDirectory(atPath: folder).sorted().map {
        (prefix + $0, try Data(contentsOf: URL(fileURLWithPath: "\(folder)/\($0)")))
    }
}

func multipartBody(_ files: [(String, Data)], boundary: String) -> Data {
    var body = Data()
    for (name, data) in files {
        body += Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"files\"; filename=\"\(name)\"\r\nContent-Type: application/octet-stream\r\n\r\n".utf8)
        body += data
        body += Data("\r\n".utf8)
    }
    body += Data("--\(boundary)--\r\n".utf8)
    return body
}

@Suite(.serialized) struct UploadTests {
    func withServer<T>(_ settings: ServeSettings, _ body: @Sendable @escaping (any TestClientProtocol, WillisServer) async throws -> T) async throws -> T {
        let server = WillisServer(settings: settings)
        let app = Application(router: server.router())
        return try await app.test(.router) { client in try await body(client, server) }
    }

    static func job(_ r: TestResponse) throws -> PredictionJob {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(PredictionJob.self, from: Data(r.body.readableBytesView))
    }

    /// A zip of a series, posted to the API, is predicted as `willis predict` predicts it, and joins the worklist.
    @Test func aZippedSeriesIsPredictedLikeWillisPredict() async throws {
        let f = try ServerFixture.get()
        let results = try f.copy()
        let folder = f.seriesFolders[3]
        let archive = try makeZip(try seriesEntries(folder) + [("__MACOSX/series/._x", Data([0, 1])), ("series/.DS_Store", Data([1]))])
        let direct = try Predictor(weights: f.weights).predict(series: folder)
        try await withServer(f.settings(results)) { client, server in
            let job = try await client.execute(uri: "/api/predict", method: .post, headers: [.contentType: "application/zip"],
                                               body: ByteBuffer(bytes: archive)) { r in
                #expect(r.status == .accepted)
                let job = try Self.job(r)
                #expect(r.headers[.location] == "/api/jobs/\(job.id)")
                #expect(job.files == (try FileManager.default.contentsOfDirectory(atPath: folder)).count, "archivers' bookkeeping is skipped")
                return job
            }
            #expect(server.jobs.waitUntilIdle())
            try await client.execute(uri: "/api/jobs/\(job.id)", method: .get) { r in
                let done = try Self.job(r)
                #expect(done.status == .done && done.resultKey == direct.uid && done.error == nil, "\(done)")
            }
            let recorded = try #require(results.result(direct.uid))
            let p = try #require(recorded.probabilities)
            #expect(zip(p, direct.probabilities).allSatisfy { abs($0 - $1) < 1e-6 }, "\(p) vs \(direct.probabilities)")
            #expect(recorded.files.contains("heatmap.nii.gz"))
            try await client.execute(uri: "/", method: .get) { r in
                #expect(String(buffer: r.body).contains("data-key=\"\(direct.uid)\""))
            }
            try await client.execute(uri: "/jobs/\(job.id)", method: .get) { r in
                #expect(r.status == .ok && String(buffer: r.body).contains("href=\"/series/\(direct.uid)\""))
            }
            #expect(((try? FileManager.default.contentsOfDirectory(atPath: "\(results.root)/.uploads")) ?? []).isEmpty, "the upload is cleaned up")
        }
    }

    /// The upload form: the series' files as multipart parts, answered with a redirect to the job page.
    @Test func theUploadFormTakesASeriesFiles() async throws {
        let f = try ServerFixture.get()
        let results = try f.copy()
        let folder = f.seriesFolders[3]
        let boundary = "----willis-test-boundary-7MA4YWxk"
        let files = try seriesEntries(folder, prefix: "my series/")
        let body = multipartBody(files, boundary: boundary)
        try await withServer(f.settings(results)) { client, server in
            let location = try await client.execute(uri: "/upload", method: .post,
                                                    headers: [.contentType: "multipart/form-data; boundary=\(boundary)"],
                                                    body: ByteBuffer(bytes: body)) { r in
                #expect(r.status == .seeOther)
                return r.headers[.location] ?? ""
            }
            #expect(location.hasPrefix("/jobs/"))
            #expect(server.jobs.waitUntilIdle())
            let job = try #require(server.jobs.job(String(location.dropFirst("/jobs/".count))))
            #expect(job.status == .done && job.files == files.count)
            #expect(results.result(f.cases[3].seriesInstanceUID)?.status == .ok)
        }
    }

    /// Archives that reach outside the upload, links, too many or too large files, and bodies of the
    /// wrong kind are refused with the right status, and nothing is written outside the upload folder.
    @Test func badUploadsAreRefused() async throws {
        let f = try ServerFixture.get()
        let results = try f.copy()
        var settings = f.settings(results)
        settings.maxFiles = 3
        settings.maxUploadBytes = 200_000
        let one = Data(repeating: 7, count: 100)
        let cases: [(String, Data, String, HTTPResponse.Status)] = [
            ("zip slip", try makeZip([("ok.dcm", one), ("../../escaped.dcm", one)]), "application/zip", .badRequest),
            ("absolute path", try makeZip([("/tmp/willis-absolute.dcm", one)]), "application/zip", .badRequest),
            ("backslashes", try makeZip([("..\\..\\escaped.dcm", one)]), "application/zip", .badRequest),
            ("a link", try makeZip([("a.dcm", one)], links: [("b.dcm", "/etc/passwd")]), "application/zip", .badRequest),
            ("too many files", try makeZip((0..<4).map { ("\($0).dcm", one) }), "application/zip", .contentTooLarge),
            ("a zip bomb", try makeZip([("big.dcm", Data(count: 300_000))]), "application/zip", .contentTooLarge),
            ("an oversize body", Data(count: 250_000), "application/zip", .contentTooLarge),
            ("not a zip", Data("PK\u{3}\u{4} but nothing more".utf8), "application/zip", .badRequest),
            ("an empty zip", try makeZip([]), "application/zip", .badRequest),
            ("plain text", Data("hello".utf8), "text/plain", .unsupportedMediaType),
            ("a form without files", Data("--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n1\r\n--b--\r\n".utf8), "multipart/form-data; boundary=b", .badRequest),
            ("a form traversing", multipartBody([("../x.dcm", one)], boundary: "b"), "multipart/form-data; boundary=b", .badRequest),
            ("a form with too many files", multipartBody((0..<4).map { ("\($0).dcm", one) }, boundary: "b"), "multipart/form-data; boundary=b", .contentTooLarge),
            ("a truncated form", Data("--b\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a\"\r\n\r\nabc".utf8), "multipart/form-data; boundary=b", .badRequest),
            ("a form without boundary", Data("x".utf8), "multipart/form-data", .badRequest),
        ]
        try await withServer(settings) { client, server in
            for (name, body, type, status) in cases {
                try await client.execute(uri: "/api/predict", method: .post, headers: [.contentType: type], body: ByteBuffer(bytes: body)) { r in
                    #expect(r.status == status, "\(name): \(r.status) \(String(buffer: r.body))")
                }
            }
            #expect(server.jobs.waitUntilIdle())
            #expect(server.jobs.counts.queued == 0)
        }
        for escaped in ["\(results.root)/escaped.dcm", "\(results.root)/.uploads/escaped.dcm", "/tmp/willis-absolute.dcm"] {
            #expect(!FileManager.default.fileExists(atPath: escaped), "\(escaped)")
        }
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: "\(results.root)/.uploads")) ?? []).isEmpty)
    }

    /// A zip of files that are not a series becomes a failed job with the loader's error, recorded
    /// as a failed series; a server without weights refuses uploads.
    @Test func anUnreadableSeriesFailsItsJobOnly() async throws {
        let f = try ServerFixture.get()
        let results = try f.copy()
        let zip = try makeZip([("1.dcm", Data(repeating: 0x44, count: 500)), ("2.dcm", Data([1, 2, 3]))])
        try await withServer(f.settings(results)) { client, server in
            let job = try await client.execute(uri: "/api/predict", method: .post, headers: [.contentType: "application/zip"],
                                               body: ByteBuffer(bytes: zip)) { try Self.job($0) }
            #expect(server.jobs.waitUntilIdle())
            let done = try #require(server.jobs.job(job.id))
            #expect(done.status == .failed && (done.error ?? "").contains("DICOM"), "\(done)")
            let key = try #require(done.resultKey)
            #expect(results.result(key)?.status == .failed)
        }
        var noWeights = ServeSettings(results: "\(try temporaryDirectory())/empty")
        noWeights.weights = []
        try await withServer(noWeights) { client, _ in
            try await client.execute(uri: "/api/predict", method: .post, headers: [.contentType: "application/zip"],
                                     body: ByteBuffer(bytes: zip)) { #expect($0.status == .serviceUnavailable) }
            try await client.execute(uri: "/", method: .get) { r in
                #expect(r.status == .ok && String(buffer: r.body).contains("No results yet"))
            }
        }
    }

    /// Posts `folder` zipped, waits, and returns the recorded result of the job.
    func upload(_ folder: String, to client: any TestClientProtocol, _ server: WillisServer, results: ResultsFolder) async throws -> SeriesResult {
        let archive = try makeZip(try seriesEntries(folder))
        let job = try await client.execute(uri: "/api/predict", method: .post, headers: [.contentType: "application/zip"],
                                           body: ByteBuffer(bytes: archive)) { try Self.job($0) }
        #expect(server.jobs.waitUntilIdle())
        let done = try #require(server.jobs.job(job.id))
        #expect(done.status == .done, "\(done)")
        let key = try #require(done.resultKey)
        return try #require(results.result(key))
    }

    /// A results folder made by willis predict with a second stage (beside a detector, or standing alone
    /// with no detector) and options of its own: an upload is predicted as run.json records, not by
    /// the detector weights alone; a run.json of older runs, which records only the files, too.
    @Test func anUploadIsPredictedAsRunJsonRecords() async throws {
        let f = try ServerFixture.get()
        let detector = try f.detectorWithPrior()
        var beside = PredictorSetup(weights: [detector], candidateClassifiers: [try f.candidateClassifier(standsAlone: false, seed: 3)])
        beside.candidates = 2
        var alone = PredictorSetup(candidateClassifiers: [try f.candidateClassifier(standsAlone: true, seed: 4)])
        alone.candidates = 3
        alone.candidateFlips = .all
        let folder = f.seriesFolders[3]
        let detectorAlone = try Predictor(weights: detector).predict(series: folder).probabilities
        for setup in [beside, alone] {
            let results = ResultsFolder("\(try temporaryDirectory())/results")
            let predictor = try setup.predictor(device: .cpu)
            try results.writeRun(RunInfo(weights: setup.weights, preparation: predictor.preparation,
                                         candidateClassifiers: setup.candidateClassifiers, candidateScoring: setup.scoring.rawValue, setup: setup))
            let direct = try predictor.predict(series: folder)
            let server = WillisServer(settings: ServeSettings(results: results.root))
            #expect(server.setup == setup)
            try await withServer(ServeSettings(results: results.root)) { client, server in
                let recorded = try await upload(folder, to: client, server, results: results)
                let p = try #require(recorded.probabilities)
                #expect(zip(p, direct.probabilities).allSatisfy { abs($0 - $1) < 1e-6 }, "\(p) vs \(direct.probabilities)")
                #expect(zip(p, detectorAlone).contains { abs($0 - $1) > 1e-4 }, "the second stage changes the probabilities")
                #expect(recorded.files.contains("candidates.json"))
                #expect(recorded.files.contains("heatmap.nii.gz") == !setup.standsAlone, "\(recorded.files)")
                // A stage with no heatmap offers its candidates' probabilities as a NIfTI in its place.
                #expect(recorded.files.contains(Evidence.candidateMapFile) == setup.standsAlone, "\(recorded.files)")
                try await client.execute(uri: "/series/\(recorded.key)", method: .get) { response in
                    #expect(String(buffer: response.body).contains("/series/\(recorded.key)/\(Evidence.candidateMapFile)") == setup.standsAlone)
                }
                if setup.standsAlone {
                    try await client.execute(uri: "/series/\(recorded.key)/\(Evidence.candidateMapFile)", method: .get) { response in
                        #expect(response.status == .ok && response.headers[.contentDisposition]?.contains("\(recorded.key)_candidate-map.nii.gz") == true)
                        let written = FileManager.default.contents(atPath: "\(results.folder(for: recorded.key))/\(Evidence.candidateMapFile)")
                        #expect(written != nil && Data(response.body.readableBytesView) == written)
                    }
                }
            }
        }
        var flipsAlone = PredictorSetup(weights: [detector])
        flipsAlone.candidateFlips = .all
        #expect(throws: PredictorSetupError.self) { try flipsAlone.predictor(device: .cpu) }
        // An older run.json: the files and scoring only, so willis predict's default options.
        let older = ResultsFolder("\(try temporaryDirectory())/results")
        try older.writeRun(RunInfo(weights: [], preparation: try Predictor(weights: f.weights).preparation,
                                   candidateClassifiers: alone.candidateClassifiers, candidateScoring: "classifier"))
        var expected = alone
        expected.candidates = PredictorSetup().candidates
        expected.candidateFlips = nil
        expected.candidateEnsemble = nil
        expected.candidateScoring = .classifier
        expected.calibrated = false
        #expect(WillisServer(settings: ServeSettings(results: older.root)).setup == expected)
        // A setup recorded before --candidate-ensemble reads back as the candidates' mean it was predicted with.
        var recorded = try #require(try JSONSerialization.jsonObject(with: try JSONEncoder().encode(alone)) as? [String: Any])
        #expect(recorded.removeValue(forKey: "candidateEnsemble") as? String == "series")
        let readBack = try JSONDecoder().decode(PredictorSetup.self, from: try JSONSerialization.data(withJSONObject: recorded))
        let rebuilt = try readBack.predictor(device: .cpu)
        #expect(readBack.candidateEnsemble == nil && rebuilt.candidateStage?.combination == .candidates)
        // Files given to willis serve come first, with the default options.
        var given = ServeSettings(results: older.root)
        given.candidateClassifiers = alone.candidateClassifiers
        #expect(WillisServer(settings: given).setup == PredictorSetup(candidateClassifiers: alone.candidateClassifiers))
    }

    /// Jobs beyond the limit wait in order; beyond the queue they are refused; never more than the
    /// limit run at once.
    @Test func jobsQueueBehindTheLimit() throws {
        let f = try ServerFixture.get()
        let results = try f.copy()
        let gate = DispatchSemaphore(value: 0)
        let weights = f.weights
        let jobs = PredictionJobs(limit: 1, maxQueued: 2, workers: 1, results: results, makePredictor: {
            gate.wait()
            return try Predictor(weights: weights)
        })
        var submitted: [PredictionJob] = []
        for n in 0..<3 {
            let (id, folder) = jobs.newUploadFolder()
            try FileManager.default.copyItem(atPath: f.seriesFolders[n], toPath: folder)
            submitted.append(try jobs.submit(id: id, folder: folder, files: 1))
        }
        Thread.sleep(forTimeInterval: 0.1)
        #expect(jobs.job(submitted[0].id)?.status == .running)
        #expect(jobs.job(submitted[1].id)?.position == 0 && jobs.job(submitted[2].id)?.position == 1)
        let (id, folder) = jobs.newUploadFolder()
        try FileManager.default.copyItem(atPath: f.seriesFolders[3], toPath: folder)
        #expect(throws: ServeError.queueFull(2)) { try jobs.submit(id: id, folder: folder, files: 1) }
        #expect(!FileManager.default.fileExists(atPath: folder), "a refused upload is removed")
        for _ in 0..<3 { gate.signal() }
        #expect(jobs.waitUntilIdle())
        #expect(submitted.allSatisfy { jobs.job($0.id)?.status == .done })
        #expect(jobs.mostRunningAtOnce == 1)
        let started = submitted.compactMap { jobs.job($0.id)?.startedAt }
        #expect(started == started.sorted(), "first come, first served")
    }
}
