import Anatomy
import Foundation
import Scoring

/// A line chart rendered to PNG without a plotting library: axes with numbered ticks, one polyline
/// per series, a legend and a title, in a 5×7 bitmap font of our own. Used for training curves
/// and ROC curves, which must open anywhere (a PNG), not only in a browser.
public struct LinePlot {
    public struct Series {
        public var name: String
        public var color: RGB
        public var points: [(x: Double, y: Double)]
        public var thickness: Int
        public init(name: String, color: RGB, points: [(x: Double, y: Double)], thickness: Int = 2) {
            self.name = name
            self.color = color
            self.points = points
            self.thickness = thickness
        }
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [Series]
    public var xRange: ClosedRange<Double>?
    public var yRange: ClosedRange<Double>?
    /// Draw the y = x diagonal (chance line of a ROC plot).
    public var diagonal = false
    /// Ticks on whole numbers only along x (epochs).
    public var integerX = false
    public var width = 640
    public var height = 420

    public init(title: String, xLabel: String, yLabel: String, series: [Series]) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.series = series
    }

    /// The ranges drawn: the given ones, or the data's padded by 5 % (a flat series gets ±1).
    func ranges() -> (ClosedRange<Double>, ClosedRange<Double>) {
        let points = series.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite }
        func span(_ values: [Double]) -> ClosedRange<Double> {
            guard let lo = values.min(), let hi = values.max() else { return 0...1 }
            if hi - lo < 1e-12 { return (lo - 1)...(hi + 1) }
            let pad = (hi - lo) * 0.05
            return (lo - pad)...(hi + pad)
        }
        return (xRange ?? span(points.map(\.x)), yRange ?? span(points.map(\.y)))
    }

    public func render() -> Canvas {
        var canvas = Canvas(width: width, height: height, background: RGB(255, 255, 255))
        let left = 64, right = width - 16, top = 34, bottom = height - 44
        let (xr, yr) = ranges()
        func px(_ x: Double) -> Double { Double(left) + Double(right - left) * (x - xr.lowerBound) / (xr.upperBound - xr.lowerBound) }
        func py(_ y: Double) -> Double { Double(bottom) - Double(bottom - top) * (y - yr.lowerBound) / (yr.upperBound - yr.lowerBound) }
        let grid = RGB(225, 225, 225), ink = RGB(40, 40, 40)
        for t in Self.ticks(xr) where !integerX || t == t.rounded() {
            let x = Int(px(t).rounded())
            canvas.line(Double(x), Double(top), Double(x), Double(bottom), color: grid)
            let label = Self.format(t)
            canvas.text(label, x: x - Canvas.textWidth(label) / 2, y: bottom + 6, color: ink)
        }
        for t in Self.ticks(yr) {
            let y = Int(py(t).rounded())
            canvas.line(Double(left), Double(y), Double(right), Double(y), color: grid)
            let label = Self.format(t)
            canvas.text(label, x: left - 6 - Canvas.textWidth(label), y: y - 3, color: ink)
        }
        canvas.line(Double(left), Double(bottom), Double(right), Double(bottom), color: ink)
        canvas.line(Double(left), Double(top), Double(left), Double(bottom), color: ink)
        if diagonal {
            let lo = max(xr.lowerBound, yr.lowerBound), hi = min(xr.upperBound, yr.upperBound)
            canvas.line(px(lo), py(lo), px(hi), py(hi), color: RGB(170, 170, 170))
        }
        for s in series {
            let visible = s.points.filter { $0.x.isFinite && $0.y.isFinite }
            for (a, b) in zip(visible, visible.dropFirst()) {
                canvas.line(px(a.x), py(a.y), px(b.x), py(b.y), color: s.color, thickness: s.thickness)
            }
            if visible.count == 1, let p = visible.first {
                canvas.fill(x: Int(px(p.x)) - 2, y: Int(py(p.y)) - 2, width: 5, height: 5, color: s.color)
            }
        }
        canvas.text(title, x: left, y: 4, color: ink, scale: 2)
        canvas.text(xLabel, x: (left + right - Canvas.textWidth(xLabel)) / 2, y: height - 18, color: ink)
        canvas.text(yLabel, x: 4, y: top - 11, color: ink)
        var legendY = top + 6
        for s in series where !s.name.isEmpty {
            let w = Canvas.textWidth(s.name)
            canvas.fill(x: right - w - 22, y: legendY, width: 12, height: 7, color: s.color)
            canvas.text(s.name, x: right - w - 6, y: legendY, color: ink)
            legendY += 12
        }
        return canvas
    }

    public func png() throws -> Data { try render().png() }

    /// ROC curves of the 14 outputs: Aneurysm Present in colour, the 13 locations thin and grey,
    /// AUCs in the legend. Nil when no column has both classes.
    public static func roc(predictions: [[Double]], truth: [[Bool]], score: CompetitionScore) -> LinePlot? {
        func curve(_ c: Int) -> [(x: Double, y: Double)]? {
            rocCurve(scores: predictions.map { $0[c] }, labels: truth.map { $0[c] })?.map { ($0.falsePositiveRate, $0.truePositiveRate) }
        }
        var series: [Series] = []
        for l in LocationLabel.locations { if let c = curve(l.rawValue) { series.append(.init(name: "", color: RGB(200, 200, 200), points: c, thickness: 1)) } }
        if !series.isEmpty {
            series[0].name = "locations, mean AUC " + (score.meanLocationAUC.map { String(format: "%.3f", $0) } ?? "n/a")
        }
        if let c = curve(LocationLabel.aneurysmPresent.rawValue) {
            let auc = (score.auc[.aneurysmPresent] ?? nil).map { String(format: "%.3f", $0) } ?? "n/a"
            series.append(.init(name: "aneurysm present, AUC \(auc)", color: RGB(214, 39, 40), points: c, thickness: 3))
        }
        guard !series.isEmpty else { return nil }
        var plot = LinePlot(title: "ROC, score " + (score.score.map { String(format: "%.3f", $0) } ?? "n/a"),
                            xLabel: "false positive rate", yLabel: "true positive rate", series: series)
        plot.xRange = 0...1
        plot.yRange = 0...1
        plot.diagonal = true
        plot.width = 520
        plot.height = 520
        return plot
    }

    /// About five round tick values inside `range`.
    static func ticks(_ range: ClosedRange<Double>) -> [Double] {
        let span = range.upperBound - range.lowerBound
        guard span > 0, span.isFinite else { return [] }
        let raw = span / 5
        let magnitude = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 2.5, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? raw
        var out: [Double] = []
        var t = ceil(range.lowerBound / step) * step
        while t <= range.upperBound + step * 1e-9 && out.count < 20 {
            out.append(abs(t) < step * 1e-9 ? 0 : t)
            t += step
        }
        return out
    }

    static func format(_ v: Double) -> String {
        if v == v.rounded() && abs(v) < 1e6 { return String(Int(v)) }
        return String(format: abs(v) >= 0.01 ? "%.3g" : "%.1e", v)
    }
}

public struct RGB: Equatable, Sendable {
    public var r, g, b: UInt8
    public init(_ r: UInt8, _ g: UInt8, _ b: UInt8) { self.r = r; self.g = g; self.b = b }
}

/// An RGB raster with the few drawing operations the plots need.
public struct Canvas {
    public let width: Int
    public let height: Int
    public private(set) var pixels: [UInt8]

    public init(width: Int, height: Int, background: RGB) {
        self.width = width
        self.height = height
        pixels = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0..<(width * height) { pixels[3 * i] = background.r; pixels[3 * i + 1] = background.g; pixels[3 * i + 2] = background.b }
    }

    public subscript(x x: Int, y y: Int) -> RGB {
        let i = 3 * (y * width + x)
        return RGB(pixels[i], pixels[i + 1], pixels[i + 2])
    }

    mutating func set(_ x: Int, _ y: Int, _ c: RGB) {
        guard x >= 0, y >= 0, x < width, y < height else { return }
        let i = 3 * (y * width + x)
        pixels[i] = c.r; pixels[i + 1] = c.g; pixels[i + 2] = c.b
    }

    public mutating func fill(x: Int, y: Int, width w: Int, height h: Int, color: RGB) {
        for yy in y..<(y + h) { for xx in x..<(x + w) { set(xx, yy, color) } }
    }

    /// A straight line by uniform steps along its longer axis.
    public mutating func line(_ x0: Double, _ y0: Double, _ x1: Double, _ y1: Double, color: RGB, thickness: Int = 1) {
        guard [x0, y0, x1, y1].allSatisfy(\.isFinite) else { return }
        let steps = max(1, Int(max(abs(x1 - x0), abs(y1 - y0)).rounded(.up)))
        guard steps < 100_000 else { return }
        for s in 0...steps {
            let t = Double(s) / Double(steps)
            let x = Int((x0 + (x1 - x0) * t).rounded()), y = Int((y0 + (y1 - y0) * t).rounded())
            for dy in 0..<thickness { for dx in 0..<thickness { set(x + dx - thickness / 2, y + dy - thickness / 2, color) } }
        }
    }

    static let glyphWidth = 6

    public static func textWidth(_ s: String, scale: Int = 1) -> Int { s.count * glyphWidth * scale }

    /// Text in the 5×7 font, upper-cased; characters it lacks are drawn as blanks.
    public mutating func text(_ s: String, x: Int, y: Int, color: RGB, scale: Int = 1) {
        var cx = x
        for ch in s.uppercased() {
            if let rows = Font.glyphs[ch] {
                for (r, row) in rows.enumerated() {
                    for (c, bit) in row.enumerated() where bit == "#" {
                        fill(x: cx + c * scale, y: y + r * scale, width: scale, height: scale, color: color)
                    }
                }
            }
            cx += Self.glyphWidth * scale
        }
    }

    public func png() throws -> Data { try PNG.encode(width: width, height: height, channels: 3, pixels: pixels) }
}

/// Willis's 5×7 bitmap font: digits, capitals and the punctuation labels use.
enum Font {
    static let glyphs: [Character: [String]] = {
        let table: [(Character, [String])] = [
            ("0", [".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."]), ("1", ["..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."]),
            ("2", [".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"]), ("3", ["####.", "....#", "....#", ".###.", "....#", "....#", "####."]),
            ("4", ["...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."]), ("5", ["#####", "#....", "####.", "....#", "....#", "#...#", ".###."]),
            ("6", ["..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."]), ("7", ["#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."]),
            ("8", [".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."]), ("9", [".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."]),
            ("A", [".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"]), ("B", ["####.", "#...#", "#...#", "####.", "#...#", "#...#", "####."]),
            ("C", [".###.", "#...#", "#....", "#....", "#....", "#...#", ".###."]), ("D", ["####.", "#...#", "#...#", "#...#", "#...#", "#...#", "####."]),
            ("E", ["#####", "#....", "#....", "####.", "#....", "#....", "#####"]), ("F", ["#####", "#....", "#....", "####.", "#....", "#....", "#...."]),
            ("G", [".###.", "#...#", "#....", "#.###", "#...#", "#...#", ".####"]), ("H", ["#...#", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"]),
            ("I", [".###.", "..#..", "..#..", "..#..", "..#..", "..#..", ".###."]), ("J", ["..###", "...#.", "...#.", "...#.", "...#.", "#..#.", ".##.."]),
            ("K", ["#...#", "#..#.", "#.#..", "##...", "#.#..", "#..#.", "#...#"]), ("L", ["#....", "#....", "#....", "#....", "#....", "#....", "#####"]),
            ("M", ["#...#", "##.##", "#.#.#", "#...#", "#...#", "#...#", "#...#"]), ("N", ["#...#", "#...#", "##..#", "#.#.#", "#..##", "#...#", "#...#"]),
            ("O", [".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."]), ("P", ["####.", "#...#", "#...#", "####.", "#....", "#....", "#...."]),
            ("Q", [".###.", "#...#", "#...#", "#...#", "#.#.#", "#..#.", ".##.#"]), ("R", ["####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#"]),
            ("S", [".####", "#....", "#....", ".###.", "....#", "....#", "####."]), ("T", ["#####", "..#..", "..#..", "..#..", "..#..", "..#..", "..#.."]),
            ("U", ["#...#", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."]), ("V", ["#...#", "#...#", "#...#", "#...#", "#...#", ".#.#.", "..#.."]),
            ("W", ["#...#", "#...#", "#...#", "#.#.#", "#.#.#", "#.#.#", ".#.#."]), ("X", ["#...#", "#...#", ".#.#.", "..#..", ".#.#.", "#...#", "#...#"]),
            ("Y", ["#...#", "#...#", ".#.#.", "..#..", "..#..", "..#..", "..#.."]), ("Z", ["#####", "....#", "...#.", "..#..", ".#...", "#....", "#####"]),
            (".", [".....", ".....", ".....", ".....", ".....", ".##..", ".##.."]), ("-", [".....", ".....", ".....", "#####", ".....", ".....", "....."]),
            ("+", [".....", "..#..", "..#..", "#####", "..#..", "..#..", "....."]), ("=", [".....", ".....", "#####", ".....", "#####", ".....", "....."]),
            (":", [".....", ".##..", ".##..", ".....", ".##..", ".##..", "....."]), ("/", ["....#", "....#", "...#.", "..#..", ".#...", "#....", "#...."]),
            ("(", ["...#.", "..#..", ".#...", ".#...", ".#...", "..#..", "...#."]), (")", [".#...", "..#..", "...#.", "...#.", "...#.", "..#..", ".#..."]),
            (",", [".....", ".....", ".....", ".....", ".##..", "..#..", ".#..."]), ("%", ["##...", "##..#", "...#.", "..#..", ".#...", "#..##", "...##"]),
            ("_", [".....", ".....", ".....", ".....", ".....", ".....", "#####"]), ("'", ["..#..", "..#..", ".#...", ".....", ".....", ".....", "....."]),
            ("×", [".....", "#...#", ".#.#.", "..#..", ".#.#.", "#...#", "....."]),
        ]
        var out: [Character: [String]] = [:]
        for (ch, rows) in table { out[ch] = rows }
        out[" "] = []
        return out
    }()
}
