import Anatomy
import Foundation
import Hummingbird
import HummingbirdTesting
import Inference
import NIfTI
import Server
import TestSupport
import Testing
import ZIPFoundation

/// Every route of `willis serve` through Hummingbird's test client, on a results folder made by
/// the same code as `willis predict --results`.
@Suite(.serialized) struct RouteTests {
    func withServer<T>(_ settings: ServeSettings, _ body: @Sendable @escaping (any TestClientProtocol, WillisServer) async throws -> T) async throws -> T {
        let server = WillisServer(settings: settings)
        let app = Application(router: server.router())
        return try await app.test(.router) { client in try await body(client, server) }
    }

    static func text(_ r: TestResponse) -> String { String(buffer: r.body) }
    static func data(_ r: TestResponse) -> Data { Data(r.body.readableBytesView) }

    /// Row order of the worklist page: its data-key attributes.
    static func keys(_ html: String) -> [String] {
        html.components(separatedBy: "<tr data-key=\"").dropFirst().map { String($0.prefix { $0 != "\"" }) }
    }

    @Test func theWorklistRanksSeriesByAneurysmPresentAndFilters() async throws {
        let f = try ServerFixture.get()
        let recorded = f.results.results()
        #expect(recorded.count == 4 && recorded.filter { $0.status == .failed }.count == 1)
        let expected = recorded.sorted { ($0.aneurysmPresent ?? -1) > ($1.aneurysmPresent ?? -1) }.map(\.key)
        try await withServer(f.settings()) { client, _ in
            try await client.execute(uri: "/", method: .get) { r in
                #expect(r.status == .ok)
                #expect(r.headers[.contentType]?.hasPrefix("text/html") == true)
                let html = Self.text(r)
                #expect(Self.keys(html) == expected)
                #expect(Self.keys(html).last == "zz_broken_series", "the unreadable folder is listed, last, under a safe key")
                #expect(html.contains("status failed"))
            }
            let ct = recorded.filter { $0.modality == "CT" }.count
            try await client.execute(uri: "/?modality=CT", method: .get) { r in
                #expect(Self.keys(Self.text(r)).count == ct)
            }
            let top = try #require(recorded.compactMap(\.aneurysmPresent).max())
            try await client.execute(uri: "/?min=\(top)", method: .get) { r in
                #expect(Self.keys(Self.text(r)).count == 1)
            }
            try await client.execute(uri: "/?min=lots", method: .get) { r in #expect(r.status == .badRequest) }
            try await client.execute(uri: "/?min=1.5", method: .get) { r in #expect(r.status == .badRequest) }
        }
    }

    /// Candidates scored by a second stage: the table shows the heatmap's and the classifier's
    /// probabilities beside the combined one, and only the 5 strongest are marked on the MIPs.
    @Test func aSecondStagesCandidatesShowBothProbabilities() {
        let candidates: [Evidence.Candidate] = (0..<8).map { (n: Int) -> Evidence.Candidate in
            let x = Double(n)
            return Evidence.Candidate(lps: [x, 0, 0], voxel: [n, 1, 1], probability: 0.9 - 0.1 * x, classifier: 0.5 + 0.01 * x,
                                      heatmap: 0.25 + 0.01 * x)
        }
        let r = SeriesResult(key: "k", seriesInstanceUID: "1.2.3", source: "s", modality: "CT", status: .ok,
                             probabilities: [Double](repeating: 0.5, count: 14), error: nil, warnings: [], inputShape: [16, 32, 32],
                             files: ["axial.png", "coronal.png", "sagittal.png"], candidates: candidates)
        let html = Pages.series(r, depth: 16, identifying: nil)
        #expect(html.contains("<th>heatmap</th><th>classifier</th>"))
        #expect(html.contains("<td class=\"num\">90.0 %</td><td class=\"num\">25.0 %</td><td class=\"num\">50.0 %</td>"))
        #expect(html.contains("<td class=\"num\">20.0 %</td><td class=\"num\">32.0 %</td><td class=\"num\">57.0 %</td>"), "all 8 listed")
        #expect(html.components(separatedBy: "class=\"marker\"").count - 1 == 3 * 5)
        var plain = r
        plain.candidates = candidates.map { Evidence.Candidate(lps: $0.lps, voxel: $0.voxel, probability: $0.probability) }
        #expect(!Pages.series(plain, depth: 16, identifying: nil).contains("<th>classifier</th>"))
        // A second stage with no detector: the dot filter's candidates, a classifier's score and no heatmap.
        var alone = r
        alone.candidates = candidates.map { Evidence.Candidate(lps: $0.lps, voxel: $0.voxel, probability: $0.probability, classifier: $0.classifier,
                                                               heatmap: 0, source: "dot-filter") }
        let aloneHTML = Pages.series(alone, depth: 16, identifying: nil)
        #expect(aloneHTML.contains("<th>probability</th><th>classifier</th><th>patient"))
        #expect(aloneHTML.contains("<td class=\"num\">90.0 %</td><td class=\"num\">50.0 %</td>") && !aloneHTML.contains("<th>heatmap</th>"))
        #expect(!aloneHTML.contains("<th>artery</th>"))
        // A classifier with a location head: each candidate's artery and how sure the head is of it.
        var named = alone
        named.candidates = alone.candidates?.map { c in
            var c = c
            c.location = LocationLabel.leftMCA.columnName
            c.locationProbability = 0.625
            return c
        }
        let namedHTML = Pages.series(named, depth: 16, identifying: nil)
        #expect(namedHTML.contains("<th>classifier</th><th>artery</th><th>patient"))
        #expect(namedHTML.contains("<td class=\"num\">50.0 %</td><td>Left Middle Cerebral Artery (62.5 %)</td>"))
    }

    /// An MR's page says how its vessels were read and from what; a CT's says nothing of it.
    @Test func aSeriesPageSaysHowAnMRsVesselsWereRead() {
        var r = SeriesResult(key: "k", seriesInstanceUID: "1.2.3", source: "s", modality: "MR", seriesDescription: "AX T2",
                             echoTimeMS: 102, vesselContrast: .darkMR, status: .ok, probabilities: [Double](repeating: 0.5, count: 14),
                             error: nil, warnings: [], inputShape: nil, files: [], candidates: nil)
        #expect(Pages.series(r, depth: nil, identifying: nil).contains("AX T2 · vessels read dark (T2) from echo time 102 ms · Aneurysm Present"))
        r.echoTimeMS = nil
        r.vesselContrast = .brightMR
        #expect(Pages.series(r, depth: nil, identifying: nil).contains("vessels read bright (no echo time, and the description does not name T2)"))
        r.vesselContrast = .darkMR
        #expect(Pages.series(r, depth: nil, identifying: nil).contains("vessels read dark (T2) from the description"))
        r.modality = "CT"
        r.vesselContrast = .ct
        #expect(!Pages.series(r, depth: nil, identifying: nil).contains("vessels read"))
    }

    @Test func aSeriesPageShowsItsEvidence() async throws {
        let f = try ServerFixture.get()
        let r = try #require(f.results.results().first { $0.status == .ok && !($0.candidates ?? []).isEmpty })
        let p = try #require(r.probabilities)
        try await withServer(f.settings()) { client, _ in
            try await client.execute(uri: "/series/\(r.key)", method: .get) { response in
                #expect(response.status == .ok)
                let html = Self.text(response)
                for view in ["axial", "coronal", "sagittal"] { #expect(html.contains("src=\"/series/\(r.key)/\(view).png\"")) }
                #expect(html.components(separatedBy: "class=\"marker\"").count - 1 == 3 * min(5, r.candidates?.count ?? 0), "the 5 strongest candidates on each MIP")
                #expect(html.contains("type=\"range\" min=\"0\" max=\"15\""), "one slider step per slice of the 16-slice grid")
                for label in LocationLabel.locations {
                    #expect(html.contains("data-location=\"\(label.columnName)\" data-probability=\"\(String(format: "%.4f", p[label.rawValue]))\""))
                }
                #expect(!html.contains("SYNTHETIC^"), "identifying fields stay hidden without --show-phi")
            }
            for view in ["axial", "coronal", "sagittal"] {
                try await client.execute(uri: "/series/\(r.key)/\(view).png", method: .get) { response in
                    #expect(response.status == .ok && response.headers[.contentType] == "image/png")
                    #expect(Self.data(response) == FileManager.default.contents(atPath: "\(f.results.folder(for: r.key))/\(view).png"))
                }
            }
            try await client.execute(uri: "/series/\(r.key)/slices/7.png", method: .get) { response in
                #expect(response.status == .ok)
                let size = try #require(pngSize(Self.data(response)))
                #expect(size.width == 32 && size.height == 32)
            }
            for bad in ["16.png", "-1.png", "x.png", "7.jpg"] {
                try await client.execute(uri: "/series/\(r.key)/slices/\(bad)", method: .get) { #expect($0.status == .notFound, "\(bad)") }
            }
            // Downloads: the heatmap NIfTI as written, the submission row, the candidates.
            try await client.execute(uri: "/series/\(r.key)/heatmap.nii.gz", method: .get) { response in
                #expect(response.status == .ok && response.headers[.contentDisposition]?.contains("attachment") == true)
                let path = "\(try temporaryDirectory())/h.nii.gz"
                try Self.data(response).write(to: URL(fileURLWithPath: path))
                let image = try NIfTI.read(path)
                #expect(image.volume.shape.depth == 16 && image.volume.rows == 32)
            }
            try await client.execute(uri: "/series/\(r.key)/submission.csv", method: .get) { response in
                let path = "\(try temporaryDirectory())/row.csv"
                try Self.data(response).write(to: URL(fileURLWithPath: path))
                let rows = try Submission.read(path)
                let row = try #require(rows[r.seriesInstanceUID ?? ""])
                #expect(rows.count == 1 && zip(row, p).allSatisfy { abs($0 - $1) < 1e-6 })
            }
            try await client.execute(uri: "/series/\(r.key)/candidates.json", method: .get) { response in
                let found = try JSONDecoder().decode([Evidence.Candidate].self, from: Self.data(response))
                #expect(found == r.candidates)
            }
            try await client.execute(uri: "/series/no.such.series", method: .get) { #expect($0.status == .notFound) }
            // A failed series has a page with its error, and no submission row.
            try await client.execute(uri: "/series/zz_broken_series", method: .get) { response in
                #expect(response.status == .ok && Self.text(response).contains("class=\"error\""))
            }
            try await client.execute(uri: "/series/zz_broken_series/submission.csv", method: .get) { #expect($0.status == .notFound) }
        }
    }

    /// Nothing outside a series' evidence files can be fetched, however the path is spelled.
    @Test func pathsOutsideTheEvidenceAreRefused() async throws {
        let f = try ServerFixture.get()
        let key = try #require(f.results.results().first { $0.status == .ok }?.key)
        let attempts = [
            "/series/..%2F..%2Fetc/axial.png", "/series/%2E%2E/run.json", "/series/../run.json", "/series/..",
            "/series/\(key)/result.json", "/series/\(key)/identifying.json", "/series/\(key)/input.nii.gz",
            "/series/\(key)/..%2F..%2Frun.json", "/series/\(key)/%2E%2E%2Fidentifying.json", "/assets/../run.json",
            "/series/.uploads/axial.png", "/series/\(key)%00/axial.png", "/run.json", "/submission.csv", "/etc/passwd",
        ]
        try await withServer(f.settings()) { client, _ in
            for uri in attempts {
                try await client.execute(uri: uri, method: .get) { r in
                    #expect(r.status == .notFound || r.status == .badRequest, "\(uri): \(r.status)")
                    #expect(!Self.text(r).contains("SYNTHETIC^") && !Self.text(r).contains("weights"), "\(uri)")
                }
            }
        }
    }

    @Test func identifyingFieldsAreShownOnlyWhenAskedFor() async throws {
        let f = try ServerFixture.get()
        let key = try #require(f.results.results().first { $0.status == .ok }?.key)
        for show in [false, true] {
            var s = f.settings()
            s.showPHI = show
            try await withServer(s) { client, _ in
                for uri in ["/series/\(key)", "/api/series/\(key)", "/api/series", "/"] {
                    try await client.execute(uri: uri, method: .get) { r in
                        let shown = Self.text(r).contains("SYNTHETIC^")
                        #expect(shown == (show && uri != "/"), "\(uri) with show-phi \(show)")
                    }
                }
            }
        }
    }

    @Test func theJSONAPIAndItsOpenAPIDocumentAgree() async throws {
        let f = try ServerFixture.get()
        let recorded = f.results.results()
        try await withServer(f.settings()) { client, _ in
            struct Item: Decodable { var result: SeriesResult; var aneurysmPresent: Double?; var mostLikelyLocation: String? }
            struct List: Decodable { var series: [Item] }
            try await client.execute(uri: "/api/series", method: .get) { r in
                #expect(r.headers[.contentType] == "application/json")
                let list = try JSONDecoder().decode(List.self, from: Self.data(r))
                #expect(Set(list.series.map(\.result)) == Set(recorded))
                let ap = list.series.map { $0.aneurysmPresent ?? -1 }
                #expect(ap == ap.sorted(by: >))
            }
            try await client.execute(uri: "/api/series?modality=MR&min=0", method: .get) { r in
                let list = try JSONDecoder().decode(List.self, from: Self.data(r))
                #expect(list.series.allSatisfy { $0.result.modality == "MR" && $0.result.status == .ok })
                #expect(list.series.count == recorded.filter { $0.modality == "MR" && $0.status == .ok }.count)
            }
            let one = try #require(recorded.first { $0.status == .ok })
            try await client.execute(uri: "/api/series/\(one.key)", method: .get) { r in
                let item = try JSONDecoder().decode(Item.self, from: Self.data(r))
                #expect(item.result == one && item.mostLikelyLocation == one.mostLikelyLocation?.label.columnName)
            }
            try await client.execute(uri: "/api/series/nope", method: .get) { r in
                #expect(r.status == .notFound && Self.text(r).contains("no series nope"))
            }
            try await client.execute(uri: "/api/jobs/nope", method: .get) { #expect($0.status == .notFound) }
            try await client.execute(uri: "/openapi.json", method: .get) { r in
                let doc = try #require(try JSONSerialization.jsonObject(with: Self.data(r)) as? [String: Any])
                #expect(doc["openapi"] as? String == "3.1.0")
                let paths = try #require(doc["paths"] as? [String: [String: Any]])
                #expect(Set(paths.keys) == ["/api/series", "/api/series/{key}", "/api/predict", "/api/jobs/{id}"])
                #expect(paths["/api/predict"]?["post"] != nil && paths["/api/series"]?["get"] != nil)
            }
            for asset in ["/assets/app.css", "/assets/app.js"] {
                try await client.execute(uri: asset, method: .get) { r in
                    #expect(r.status == .ok && !Self.text(r).contains("http://") && !Self.text(r).contains("https://"), "\(asset) is self-contained")
                }
            }
            try await client.execute(uri: "/upload", method: .get) { r in #expect(r.status == .ok && Self.text(r).contains("multipart/form-data")) }
        }
    }

    @Test func aTokenGuardsEveryRouteAndBindingOffLoopbackNeedsOne() async throws {
        let f = try ServerFixture.get()
        var s = f.settings()
        s.host = "0.0.0.0"
        #expect(throws: ServeError.self) { try s.validate() }
        s.token = "short"
        #expect(throws: ServeError.self) { try s.validate() }
        let token = "a-long-enough-secret-token"
        s.token = token
        try s.validate()
        try await withServer(s) { client, _ in
            for uri in ["/", "/api/series", "/openapi.json", "/assets/app.css", "/upload"] {
                try await client.execute(uri: uri, method: .get) { r in
                    #expect(r.status == .unauthorized && r.headers[.wwwAuthenticate] == "Bearer", "\(uri)")
                }
                try await client.execute(uri: uri, method: .get, headers: [.authorization: "Bearer wrong-token-of-some-length"]) { r in
                    #expect(r.status == .unauthorized, "\(uri)")
                }
                try await client.execute(uri: uri, method: .get, headers: [.authorization: "Bearer \(token)"]) { r in
                    #expect(r.status == .ok, "\(uri)")
                }
            }
            try await client.execute(uri: "/api/predict", method: .post, body: ByteBuffer(string: "x")) { #expect($0.status == .unauthorized) }
            var cookie = ""
            try await client.execute(uri: "/login?token=\(token)", method: .get) { r in
                #expect(r.status == .seeOther)
                cookie = String((r.headers[.setCookie] ?? "").prefix { $0 != ";" })
                #expect(r.headers[.setCookie]?.contains("HttpOnly") == true)
            }
            #expect(cookie == "willis_token=\(token)")
            try await client.execute(uri: "/", method: .get, headers: [.cookie: cookie]) { #expect($0.status == .ok) }
            try await client.execute(uri: "/login?token=guess", method: .get) { r in #expect(r.headers[.setCookie] == nil) }
        }
    }
}

extension SeriesResult: Hashable {
    public func hash(into hasher: inout Hasher) { hasher.combine(key) }
}
