import Anatomy
import Foundation
import Inference
import Reports

/// The app's HTML. Pages are complete without scripts (filters are a GET form, the job page
/// refreshes itself); `app.js` adds the slice scroller and live job progress.
public enum Pages {
    static func page(_ title: String, body: String) -> String {
        """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(HTML.escape(title)) · Willis</title>
        <link rel="stylesheet" href="/assets/app.css">
        <link rel="icon" href="data:,">
        <script src="/assets/app.js" defer></script>
        </head><body>
        <header><a href="/" class="brand">Willis</a><nav><a href="/">Worklist</a><a href="/upload">Upload</a><a href="/openapi.json">API</a></nav></header>
        <main>
        \(body)
        </main></body></html>
        """
    }

    /// Candidates marked on the MIPs (all are listed in the table).
    static let markedCandidates = 5

    static func percent(_ p: Double?) -> String { p.map { String(format: "%.1f %%", $0 * 100) } ?? "–" }

    /// The worklist: series sorted by Aneurysm Present, highest first; failed series last.
    public static func worklist(_ all: [SeriesResult], modality: String?, threshold: Double?) -> String {
        let modalities = Set(all.compactMap(\.modality)).sorted()
        let shown = Worklist.filter(all, modality: modality, threshold: threshold)
        var rows = ""
        for (n, r) in shown.enumerated() {
            let ap = r.aneurysmPresent
            let likely = r.mostLikelyLocation.map { "\(HTML.escape($0.label.columnName)) (\(percent($0.probability)))" } ?? "–"
            let status = r.status == .failed ? #"<span class="status failed">failed</span>"#
                : r.warnings.isEmpty ? #"<span class="status ok">ok</span>"# : #"<span class="status warn" title="\#(HTML.escape(r.warnings.joined(separator: "; ")))">\#(r.warnings.count) warning\#(r.warnings.count == 1 ? "" : "s")</span>"#
            let bar = ap.map { String(format: #"<span class="bar"><span style="width:%.0f%%;background:%@"></span></span>"#, $0 * 100, Schematic.colour($0)) } ?? ""
            rows += """
            <tr data-key="\(HTML.escape(r.key))"><td>\(n + 1)</td>\
            <td><a href="/series/\(HTML.escape(r.key))">\(HTML.escape(r.seriesInstanceUID ?? r.key))</a></td>\
            <td>\(HTML.escape(r.modality ?? "–"))\(r.seriesDescription.map { " · " + HTML.escape($0) } ?? "")</td>\
            <td class="num">\(percent(ap)) \(bar)</td><td>\(likely)</td><td>\(status)</td></tr>

            """
        }
        var options = #"<option value="">all</option>"#
        for m in modalities { options += #"<option\#(m == modality ? " selected" : "")>\#(HTML.escape(m))</option>"# }
        let body = """
        <h1>Worklist</h1>
        <form class="filters" method="get" action="/">
        <label>Modality <select name="modality">\(options)</select></label>
        <label>Aneurysm Present ≥ <input name="min" type="number" min="0" max="1" step="0.05" value="\(threshold.map { String($0) } ?? "")" placeholder="0.0"></label>
        <button>Filter</button> <span class="count">\(shown.count) of \(all.count) series</span>
        </form>
        <table class="worklist"><thead><tr><th>#</th><th>Series</th><th>Modality</th><th>Aneurysm Present</th><th>Most likely location</th><th>Status</th></tr></thead>
        <tbody>
        \(rows)</tbody></table>
        \(all.isEmpty ? #"<p class="empty">No results yet: run <code>willis predict SERIES --weights W --results DIR</code>, or upload a series.</p>"# : "")
        """
        return page("Worklist", body: body)
    }

    /// How an MR's vessels were read (`SeriesResult.vesselContrast`) and from what, for a reader to check:
    /// the dot filter and a contrast-aligned second stage went by it. Nil for CT and for older results.
    static func vesselReading(_ r: SeriesResult) -> String? {
        guard let read = r.vesselContrast, read != .ct else { return nil }
        return "vessels read " + read.reading(echoTimeMS: r.echoTimeMS)
    }

    /// One series: MIPs with the heatmap and candidate markers, a slice scroller, the schematic,
    /// the 14 probabilities, candidates, and downloads.
    public static func series(_ r: SeriesResult, depth: Int?, identifying: [String: String]?) -> String {
        let key = HTML.escape(r.key)
        var body = "<h1>\(HTML.escape(r.seriesInstanceUID ?? r.key))</h1>"
        body += #"<p class="meta">\#(HTML.escape(r.modality ?? "–"))\#(r.seriesDescription.map { " · " + HTML.escape($0) } ?? "")\#(vesselReading(r).map { " · " + $0 } ?? "") · Aneurysm Present <strong>\#(percent(r.aneurysmPresent))</strong> · \#(r.status == .ok ? "predicted" : "failed") \#(HTML.escape(r.predictedAt))</p>"#
        if let identifying, !identifying.isEmpty {
            body += #"<p class="phi">"# + identifying.sorted { $0.key < $1.key }.map { "\(HTML.escape($0.key)): \(HTML.escape($0.value))" }.joined(separator: " · ") + "</p>"
        }
        if let e = r.error { body += #"<p class="error">\#(HTML.escape(e))</p>"# }
        for w in r.warnings { body += #"<p class="warning">\#(HTML.escape(w))</p>"# }
        if r.files.contains(Evidence.projectionFile(.axial)) {
            body += #"<section class="mips">"#
            for view in Projection.allCases {
                var markers = ""
                if let shape = r.inputShape, shape.count == 3 {
                    // The strongest few: a second stage lists 20 peaks, too many to mark legibly.
                    for (n, c) in (r.candidates ?? []).prefix(Self.markedCandidates).enumerated() where c.voxel.count == 3 {
                        let (x, y) = markerPosition(view, voxel: c.voxel, shape: shape)
                        markers += String(format: #"<span class="marker" style="left:%.2f%%;top:%.2f%%" title="candidate %d: %.0f %%">%d</span>"#,
                                          x * 100, y * 100, n + 1, c.probability * 100, n + 1)
                    }
                }
                body += #"<figure><div class="mip"><img src="/series/\#(key)/\#(view.rawValue).png" alt="\#(view.rawValue) maximum-intensity projection">\#(markers)</div><figcaption>\#(view.rawValue) MIP</figcaption></figure>"#
            }
            body += "</section>"
        }
        body += #"<section class="panels">"#
        if let depth, depth > 0 {
            let mid = depth / 2
            body += #"<div class="panel"><h2>Slices</h2><img id="slice" class="slice" src="/series/\#(key)/slices/\#(mid).png" alt="axial slice" data-base="/series/\#(key)/slices/"><br><input id="scroller" type="range" min="0" max="\#(depth - 1)" value="\#(mid)" aria-label="slice"> <span id="slice-number">\#(mid + 1) / \#(depth)</span></div>"#
        }
        body += #"<div class="panel"><h2>Locations</h2>\#(Schematic.svg(probabilities: r.probabilities))</div>"#
        body += #"<div class="panel"><h2>Probabilities</h2><table class="probabilities">"#
        for label in LocationLabel.allCases {
            let p = r.probabilities.map { $0[label.rawValue] }
            body += #"<tr><td>\#(HTML.escape(label.columnName))</td><td class="num">\#(percent(p))</td></tr>"#
        }
        body += "</table></div></section>"
        if let candidates = r.candidates, !candidates.isEmpty {
            // With a second stage, each candidate's probability combines the heatmap's and the classifier's.
            // A second stage with no detector scores the dot filter's candidates alone: there is no heatmap to show.
            // A classifier with a location head names the artery under each candidate.
            let staged = candidates.contains { $0.classifier != nil }, heatmap = staged && candidates.contains { $0.source == nil }
            let named = candidates.contains { $0.location != nil }
            body += #"<h2>Candidates</h2><table class="candidates"><tr><th>#</th><th>probability</th>"#
                + (heatmap ? "<th>heatmap</th>" : "") + (staged ? "<th>classifier</th>" : "") + (named ? "<th>artery</th>" : "")
                + "<th>patient position (LPS, mm)</th><th>voxel (i, j, k)</th></tr>"
            for (n, c) in candidates.enumerated() {
                body += "<tr><td>\(n + 1)</td><td class=\"num\">\(percent(c.probability))</td>"
                if heatmap { body += "<td class=\"num\">\(percent(c.heatmap))</td>" }
                if staged { body += "<td class=\"num\">\(percent(c.classifier))</td>" }
                if named { body += "<td>\(HTML.escape(c.location ?? "")) (\(percent(c.locationProbability)))</td>" }
                body += "<td>\(c.lps.map { String(format: "%.1f", $0) }.joined(separator: ", "))</td><td>\(c.voxel.map(String.init).joined(separator: ", "))</td></tr>"
            }
            body += "</table>"
        }
        body += #"<h2>Downloads</h2><ul class="downloads">"#
        body += #"<li><a href="/series/\#(key)/submission.csv" download>submission.csv row</a></li>"#
        if r.files.contains(Evidence.heatmapFile) { body += #"<li><a href="/series/\#(key)/heatmap.nii.gz" download>aneurysm heatmap (NIfTI, patient geometry)</a></li>"# }
        if r.files.contains(Evidence.candidateMapFile) {
            body += #"<li><a href="/series/\#(key)/\#(Evidence.candidateMapFile)" download>aneurysm candidates' probabilities (NIfTI, patient geometry; a \#(Int(Evidence.candidateRadiusMM)) mm ball per candidate)</a></li>"#
        }
        if r.files.contains(Evidence.candidatesFile) { body += #"<li><a href="/series/\#(key)/candidates.json">candidates (JSON)</a></li>"# }
        body += #"<li><a href="/api/series/\#(key)">result (JSON)</a></li></ul>"#
        return page(r.seriesInstanceUID ?? r.key, body: body)
    }

    /// Where voxel (i, j, k) of a D × H × W grid falls in a view's MIP, as fractions of its width and
    /// height (coronal and sagittal MIPs have the head up; see `Projection`).
    public static func markerPosition(_ view: Projection, voxel: [Int], shape: [Int]) -> (x: Double, y: Double) {
        let (i, j, k) = (Double(voxel[0]) + 0.5, Double(voxel[1]) + 0.5, Double(voxel[2]) + 0.5)
        let (d, h, w) = (Double(shape[0]), Double(shape[1]), Double(shape[2]))
        switch view {
        case .axial: return (i / w, j / h)
        case .coronal: return (i / w, 1 - k / d)
        case .sagittal: return (j / h, 1 - k / d)
        }
    }

    public static func upload(maxFiles: Int, maxBytes: Int, canPredict: Bool) -> String {
        page("Upload", body: """
        <h1>Upload a series</h1>
        <p>One DICOM series: a zip of its folder, or its files. At most \(maxFiles) files and \(maxBytes >> 20) MB.</p>
        \(canPredict ? "" : #"<p class="error">This server has no weights to predict with (start it with --weights).</p>"#)
        <form method="post" action="/upload" enctype="multipart/form-data">
        <input type="file" name="files" multiple required> <button>Predict</button>
        </form>
        """)
    }

    public static func job(_ job: PredictionJob) -> String {
        var state: String
        switch job.status {
        case .queued: state = "queued (\(job.position ?? 0) ahead)"
        case .running: state = "predicting…"
        case .done: state = "done"
        case .failed: state = "failed"
        }
        var body = #"<h1>Upload \#(HTML.escape(job.id))</h1><p id="job" data-job="\#(HTML.escape(job.id))" data-status="\#(job.status.rawValue)">\#(job.files) files · <span id="job-state">\#(state)</span></p>"#
        body += #"<progress id="job-progress" max="3" value="\#(job.status == .queued ? 1 : job.status == .running ? 2 : 3)"></progress>"#
        if let e = job.error { body += #"<p class="error">\#(HTML.escape(e))</p>"# }
        if let key = job.resultKey { body += #"<p><a id="job-result" href="/series/\#(HTML.escape(key))">See the result</a></p>"# }
        var html = page("Upload \(job.id)", body: body)
        if job.status == .queued || job.status == .running {
            // Without scripts the page still follows the job.
            html = html.replacingOccurrences(of: "<meta charset=\"utf-8\">", with: "<meta charset=\"utf-8\"><noscript><meta http-equiv=\"refresh\" content=\"2\"></noscript>")
        }
        return html
    }

    public static func message(_ title: String, _ text: String) -> String {
        page(title, body: "<h1>\(HTML.escape(title))</h1><p>\(HTML.escape(text))</p>")
    }
}

/// Sorting and filtering the worklist, shared by the page and the API.
public enum Worklist {
    public static func filter(_ all: [SeriesResult], modality: String?, threshold: Double?) -> [SeriesResult] {
        all.filter { r in
            (modality.map { $0.isEmpty || r.modality == $0 } ?? true)
                && (threshold.map { t in (r.aneurysmPresent ?? -1) >= t } ?? true)
        }.sorted { a, b in
            let (pa, pb) = (a.aneurysmPresent ?? -1, b.aneurysmPresent ?? -1)
            return pa != pb ? pa > pb : a.key < b.key
        }
    }
}
