import Anatomy
import Foundation
import Scoring
import VolumeCore

/// The demo's report: score, per-location AUC, training curves and a gallery of cases with MIPs.
public struct HTMLReport {
    public struct Epoch: Sendable { public var epoch: Int; public var trainLoss, validationLoss: Double; public var score: Double?
        public init(epoch: Int, trainLoss: Double, validationLoss: Double, score: Double?) {
            (self.epoch, self.trainLoss, self.validationLoss, self.score) = (epoch, trainLoss, validationLoss, score)
        }
    }
    public struct Case: Sendable {
        public var uid: String, modality: String
        public var probabilities: [Double], truth: [Bool]
        public var volume: Volume
        public init(uid: String, modality: String, probabilities: [Double], truth: [Bool], volume: Volume) {
            (self.uid, self.modality, self.probabilities, self.truth, self.volume) = (uid, modality, probabilities, truth, volume)
        }
    }

    public var title: String
    public var score: CompetitionScore
    public var epochs: [Epoch]
    public var cases: [Case]
    public var notes: [String]
    /// Images next to the page (file names relative to it), shown under the training curves.
    public var figures: [(caption: String, file: String)] = []

    public init(title: String, score: CompetitionScore, epochs: [Epoch], cases: [Case], notes: [String]) {
        (self.title, self.score, self.epochs, self.cases, self.notes) = (title, score, epochs, cases, notes)
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    func fmt(_ v: Double?) -> String { v.map { String(format: "%.3f", $0) } ?? "n/a" }

    /// Loss and score curves as inline SVG.
    func curves() -> String {
        guard epochs.count >= 1 else { return "<p>No epochs.</p>" }
        let (w, h, pad) = (560.0, 220.0, 36.0)
        let losses = epochs.flatMap { [$0.trainLoss, $0.validationLoss] }
        let lo = (losses.min() ?? 0) * 0.95, hi = (losses.max() ?? 1) * 1.05
        func x(_ e: Int) -> Double { pad + (w - 2 * pad) * Double(e - 1) / Double(max(1, epochs.count - 1)) }
        func y(_ v: Double, _ a: Double, _ b: Double) -> Double { h - pad - (h - 2 * pad) * (v - a) / max(b - a, 1e-9) }
        func line(_ values: [(Int, Double)], _ a: Double, _ b: Double, _ color: String) -> String {
            "<polyline fill='none' stroke='\(color)' stroke-width='2' points='" + values.map { String(format: "%.1f,%.1f", x($0.0), y($0.1, a, b)) }.joined(separator: " ") + "'/>"
        }
        let scores = epochs.compactMap { e in e.score.map { (e.epoch, $0) } }
        return """
        <svg width='\(Int(w))' height='\(Int(h))' viewBox='0 0 \(Int(w)) \(Int(h))' role='img' aria-label='training curves'>
        <rect width='100%' height='100%' fill='#fafafa'/>
        \(line(epochs.map { ($0.epoch, $0.trainLoss) }, lo, hi, "#1f77b4"))
        \(line(epochs.map { ($0.epoch, $0.validationLoss) }, lo, hi, "#ff7f0e"))
        \(line(scores, 0, 1, "#2ca02c"))
        <text x='\(pad)' y='16' font-size='12'>loss \(String(format: "%.3f–%.3f", lo, hi)): <tspan fill='#1f77b4'>train</tspan>, <tspan fill='#ff7f0e'>validation</tspan>; <tspan fill='#2ca02c'>validation score (0–1)</tspan>; epochs 1–\(epochs.count)</text>
        </svg>
        """
    }

    public func render() throws -> String {
        var html = """
        <!doctype html><html><head><meta charset='utf-8'><title>\(Self.escape(title))</title>
        <style>body{font-family:sans-serif;margin:2em;max-width:1100px}td,th{padding:2px 10px;text-align:left}
        .case{display:inline-block;margin:8px;vertical-align:top;font-size:12px}.case img{height:128px;image-rendering:pixelated}</style>
        </head><body><h1>\(Self.escape(title))</h1>
        <p><b>Competition score: \(fmt(score.score))</b> — AUC(Aneurysm Present) \(fmt(score.auc[.aneurysmPresent] ?? nil)),
        mean location AUC \(fmt(score.meanLocationAUC)).</p>
        """
        for n in notes { html += "<p>\(Self.escape(n))</p>" }
        html += "<h2>AUC per location</h2><table><tr><th>label</th><th>AUC</th></tr>"
        for l in LocationLabel.allCases { html += "<tr><td>\(Self.escape(l.columnName))</td><td>\(fmt(score.auc[l] ?? nil))</td></tr>" }
        html += "</table><h2>Training</h2>" + curves()
        for f in figures {
            html += "<figure style='display:inline-block'><img src='\(Self.escape(f.file))' alt='\(Self.escape(f.caption))' style='max-width:520px'>"
                + "<figcaption>\(Self.escape(f.caption))</figcaption></figure>"
        }
        html += "<h2>Cases</h2>"
        for c in cases {
            let canonical = try c.volume.canonical()
            var images = ""
            for p in Projection.allCases {
                let img = p.image(of: canonical)
                let png = try PNG.encode(width: img.width, height: img.height, channels: 1, pixels: img.pixels)
                images += "<img alt='\(p.rawValue) MIP' src='data:image/png;base64,\(png.base64EncodedString())'>"
            }
            let ap = LocationLabel.aneurysmPresent.rawValue
            let top = LocationLabel.locations.max { c.probabilities[$0.rawValue] < c.probabilities[$1.rawValue] }
            let truth = LocationLabel.locations.filter { c.truth[$0.rawValue] }.map(\.columnName).joined(separator: ", ")
            html += """
            <div class='case'>\(images)<br>\(Self.escape(c.modality)) · P(aneurysm) \(String(format: "%.2f", c.probabilities[ap]))
            · most likely: \(Self.escape(top?.columnName ?? "-"))<br>truth: \(Self.escape(truth.isEmpty ? "no aneurysm" : truth))</div>
            """
        }
        return html + "</body></html>\n"
    }
}
