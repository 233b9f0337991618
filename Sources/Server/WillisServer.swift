import Foundation
import Hummingbird
import Inference
import Torch

/// The recorded results, listed once and listed again when the folder changes or a job finishes.
public final class ResultsIndex: @unchecked Sendable {
    let results: ResultsFolder
    let lock = NSLock()
    var cached: [SeriesResult] = []
    var stamp: Date?
    var stale = true

    public init(results: ResultsFolder) { self.results = results }

    public func all() -> [SeriesResult] {
        let modified = (try? FileManager.default.attributesOfItem(atPath: results.seriesRoot))?[.modificationDate] as? Date
        lock.lock()
        defer { lock.unlock() }
        if stale || modified != stamp {
            cached = results.results()
            stamp = modified
            stale = false
        }
        return cached
    }

    public func invalidate() {
        lock.lock()
        stale = true
        lock.unlock()
    }

    public func result(_ key: String) -> SeriesResult? {
        ResultsFolder.isValidKey(key) ? results.result(key) : nil
    }
}

/// `willis serve`: the worklist, series pages, uploads and the JSON API over one results folder.
public final class WillisServer: Sendable {
    public let settings: ServeSettings
    public let jobs: PredictionJobs
    public let index: ResultsIndex
    public let slices: SliceImages
    /// What uploads are predicted with: the settings' files, else the predictor the results folder's
    /// run.json records, so that an upload is predicted as the folder's other series were. Nil: none.
    public let setup: PredictorSetup?
    public var canPredict: Bool { setup != nil }

    /// Files of a series' folder that may be fetched, with their content types.
    static let servedFiles: [String: String] = [
        "axial.png": "image/png", "coronal.png": "image/png", "sagittal.png": "image/png",
        Evidence.heatmapFile: "application/gzip", Evidence.candidateMapFile: "application/gzip", Evidence.candidatesFile: "application/json",
    ]

    public init(settings: ServeSettings) {
        self.settings = settings
        let results = settings.results
        let setup = settings.setup ?? results.run().map(\.predictorSetup).flatMap { $0.namesNoFiles ? nil : $0 }
        self.setup = setup
        let index = ResultsIndex(results: results)
        let slices = SliceImages(results: results)
        self.index = index
        self.slices = slices
        let device = settings.device
        jobs = PredictionJobs(
            limit: settings.concurrentJobs, maxQueued: settings.maxQueuedJobs, workers: settings.workers, results: results,
            makePredictor: {
                guard let setup else { throw ServeError.noWeights }
                return try setup.predictor(device: Device(parsing: device))
            },
            onFinished: { job in
                index.invalidate()
                if let key = job.resultKey { slices.forget(key) }
            })
    }

    public func application() -> some ApplicationProtocol {
        Application(router: router(), configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "Willis"))
    }

    // MARK: Routes

    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        if let token = settings.token, !token.isEmpty { router.middlewares.add(TokenCheck(token: token)) }
        router.middlewares.add(SecurityHeaders())
        router.get("/") { request, _ in
            let q = request.uri.queryParameters
            let modality = q.get("modality").flatMap { $0.isEmpty ? nil : $0 }
            let threshold = try Self.threshold(q.get("min"))
            return Self.html(Pages.worklist(self.index.all(), modality: modality, threshold: threshold))
        }
        router.get("/login") { request, _ in
            // A browser cannot send an Authorization header by itself: a link with the token sets a cookie.
            var response = Response(status: .seeOther, headers: [.location: "/"])
            if let t = request.uri.queryParameters.get("token"), let token = self.settings.token, TokenCheck.equal(t, token) {
                response.setCookie(Cookie(name: TokenCheck.cookie, value: t, path: "/", secure: false, httpOnly: true, sameSite: .strict))
            }
            return response
        }
        router.get("/series/{key}") { _, context in
            let key = try context.parameters.require("key")
            guard let r = self.index.result(key) else { throw HTTPError(.notFound, message: "no series \(key)") }
            let identifying = self.settings.showPHI ? self.settings.results.identifying(key) : nil
            return Self.html(Pages.series(r, depth: self.slices.depth(key), identifying: identifying))
        }
        router.get("/series/{key}/slices/{slice}") { _, context in
            let key = try context.parameters.require("key"), name = try context.parameters.require("slice")
            guard name.hasSuffix(".png"), let k = Int(name.dropLast(4)), let png = try self.slices.png(key, slice: k) else {
                throw HTTPError(.notFound, message: "no slice \(name) of \(key)")
            }
            return Self.bytes(png, type: "image/png")
        }
        router.get("/series/{key}/submission.csv") { _, context in
            let key = try context.parameters.require("key")
            guard let r = self.index.result(key) else { throw HTTPError(.notFound, message: "no series \(key)") }
            guard let p = r.probabilities else { throw HTTPError(.notFound, message: "\(key) has no prediction: \(r.error ?? "failed")") }
            var response = Self.bytes(Data(Submission.encode([(r.seriesInstanceUID ?? r.key, p)]).utf8), type: "text/csv; charset=utf-8")
            response.headers[.contentDisposition] = "attachment; filename=\"\(r.key).csv\""
            return response
        }
        router.get("/series/{key}/{file}") { _, context in
            let key = try context.parameters.require("key"), file = try context.parameters.require("file")
            // Only the evidence files by name, only inside a recorded series' folder.
            guard let type = Self.servedFiles[file], let r = self.index.result(key), r.files.contains(file),
                  let data = FileManager.default.contents(atPath: "\(self.settings.results.folder(for: key))/\(file)") else {
                throw HTTPError(.notFound, message: "no \(file) for \(key)")
            }
            var response = Self.bytes(data, type: type)
            if file.hasSuffix(".nii.gz") { response.headers[.contentDisposition] = "attachment; filename=\"\(key)_\(file)\"" }
            return response
        }
        router.get("/upload") { _, _ in
            Self.html(Pages.upload(maxFiles: self.settings.maxFiles, maxBytes: self.settings.maxUploadBytes, canPredict: self.canPredict))
        }
        router.post("/upload") { request, _ in
            let job = try await self.accept(request)
            return Response(status: .seeOther, headers: [.location: "/jobs/\(job.id)"])
        }
        router.get("/jobs/{id}") { _, context in
            let id = try context.parameters.require("id")
            guard let job = self.jobs.job(id) else { throw HTTPError(.notFound, message: "no job \(id)") }
            return Self.html(Pages.job(job))
        }
        router.get("/assets/app.css") { _, _ in Self.bytes(Data(Assets.css.utf8), type: "text/css; charset=utf-8") }
        router.get("/assets/app.js") { _, _ in Self.bytes(Data(Assets.js.utf8), type: "text/javascript; charset=utf-8") }
        router.get("/openapi.json") { _, _ in Self.bytes(OpenAPIDocument.json, type: "application/json") }

        router.get("/api/series") { request, _ in
            let q = request.uri.queryParameters
            let list = Worklist.filter(self.index.all(), modality: q.get("modality").flatMap { $0.isEmpty ? nil : $0 },
                                       threshold: try Self.threshold(q.get("min")))
            return try Self.json(SeriesList(series: list.map { self.view($0) }))
        }
        router.get("/api/series/{key}") { _, context in
            let key = try context.parameters.require("key")
            guard let r = self.index.result(key) else { throw HTTPError(.notFound, message: "no series \(key)") }
            return try Self.json(self.view(r))
        }
        router.post("/api/predict") { request, _ in
            let job = try await self.accept(request)
            var response = try Self.json(job, status: .accepted)
            response.headers[.location] = "/api/jobs/\(job.id)"
            return response
        }
        router.get("/api/jobs/{id}") { _, context in
            let id = try context.parameters.require("id")
            guard let job = self.jobs.job(id) else { throw HTTPError(.notFound, message: "no job \(id)") }
            return try Self.json(job)
        }
        return router
    }

    /// A result as the API gives it: identifying fields only with --show-phi.
    struct SeriesView: Codable {
        var result: SeriesResult
        var identifying: [String: String]?
        var aneurysmPresent: Double?
        var mostLikelyLocation: String?
    }
    struct SeriesList: Codable { var series: [SeriesView] }

    func view(_ r: SeriesResult) -> SeriesView {
        SeriesView(result: r, identifying: settings.showPHI ? settings.results.identifying(r.key) : nil,
                   aneurysmPresent: r.aneurysmPresent, mostLikelyLocation: r.mostLikelyLocation?.label.columnName)
    }

    /// Reads an upload (a zip body, or a multipart form of a zip or the series' files) into a
    /// folder of its own and queues it.
    func accept(_ request: Request) async throws -> PredictionJob {
        guard canPredict else { throw HTTPError(.serviceUnavailable, message: ServeError.noWeights.description) }
        if let length = request.headers[.contentLength].flatMap(Int.init), length > settings.maxUploadBytes {
            throw HTTPError(.contentTooLarge, message: "the upload is \(length) bytes; the limit is \(settings.maxUploadBytes)")
        }
        let buffer = try await request.body.collect(upTo: settings.maxUploadBytes)
        let body = Data(buffer.readableBytesView)
        let type = request.headers[.contentType] ?? ""
        let (id, folder) = jobs.newUploadFolder()
        do {
            let files: Int
            if type.lowercased().hasPrefix("multipart/form-data") {
                files = try Upload.unpack(try Upload.multipart(body, contentType: type), into: folder,
                                          maxFiles: settings.maxFiles, maxBytes: settings.maxUploadBytes)
            } else if type.lowercased().hasPrefix("application/zip") || body.starts(with: [0x50, 0x4B, 0x03, 0x04]) {
                files = try Upload.unzip(body, into: folder, maxFiles: settings.maxFiles, maxBytes: settings.maxUploadBytes)
            } else {
                throw HTTPError(.unsupportedMediaType, message: "send application/zip or multipart/form-data, not '\(type)'")
            }
            return try jobs.submit(id: id, folder: folder, files: files)
        } catch {
            try? FileManager.default.removeItem(atPath: folder)
            switch error {
            case let e as ServeError:
                switch e {
                case .tooManyFiles, .tooLarge: throw HTTPError(.contentTooLarge, message: e.description)
                case .queueFull: throw HTTPError(.serviceUnavailable, message: e.description)
                default: throw HTTPError(.badRequest, message: e.description)
                }
            default: throw error
            }
        }
    }

    // MARK: Responses

    static func threshold(_ text: String?) throws -> Double? {
        guard let text, !text.isEmpty else { return nil }
        guard let v = Double(text), v.isFinite, v >= 0, v <= 1 else { throw HTTPError(.badRequest, message: "min must be a probability, not '\(text)'") }
        return v
    }

    static func html(_ text: String) -> Response { bytes(Data(text.utf8), type: "text/html; charset=utf-8") }

    static func bytes(_ data: Data, type: String) -> Response {
        Response(status: .ok, headers: [.contentType: type], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        var response = bytes(try encoder.encode(value), type: "application/json")
        response.status = status
        return response
    }
}

/// Every request carries the token: `Authorization: Bearer <token>`, or the cookie `/login` sets.
struct TokenCheck: RouterMiddleware {
    typealias Context = BasicRequestContext
    static let cookie = "willis_token"
    let token: String

    /// Compares in time independent of where the strings differ.
    static func equal(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var diff = UInt8(x.count == y.count ? 0 : 1)
        for n in 0..<max(x.count, y.count) { diff |= (n < x.count ? x[n] : 0) ^ (n < y.count ? y[n] : 0) }
        return diff == 0
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if request.uri.path == "/login" { return try await next(request, context) }
        if let header = request.headers[.authorization], header.hasPrefix("Bearer "), Self.equal(String(header.dropFirst(7)), token) {
            return try await next(request, context)
        }
        if let c = request.cookies[Self.cookie], Self.equal(c.value, token) { return try await next(request, context) }
        throw HTTPError(.unauthorized, headers: [.wwwAuthenticate: "Bearer"], message: "a bearer token is required")
    }
}

/// Pages load nothing from elsewhere, and are not framed by other sites.
struct SecurityHeaders: RouterMiddleware {
    typealias Context = BasicRequestContext
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        response.headers[.contentSecurityPolicy] = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; frame-ancestors 'none'"
        response.headers[.xContentTypeOptions] = "nosniff"
        return response
    }
}
