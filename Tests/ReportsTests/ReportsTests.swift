import Anatomy
import Foundation
import Scoring
import Reports
import TestSupport
import Testing
import VolumeCore

@Suite struct ReportsTests {
    struct Probe: Decodable { var mode: String?; var width: Int?; var height: Int?; var values: [[Int]]?; var error: String? }

    /// Pillow decodes what `PNG` encodes, and reads back the exact pixels at chosen points.
    func decodeWithPillow(_ png: Data, points: [[Int]]) throws -> Probe {
        let dir = try temporaryDirectory()
        let path = "\(dir)/image.png"
        try png.write(to: URL(fileURLWithPath: path))
        try JSONEncoder().encode(points).write(to: URL(fileURLWithPath: path + ".points.json"))
        try runOracle("png_probe.py", ["\(dir)/probe.json", path])
        let probes = try JSONDecoder().decode([Probe].self, from: Data(contentsOf: URL(fileURLWithPath: "\(dir)/probe.json")))
        return try #require(probes.first)
    }

    @Test func aLinePlotDrawsItsSeriesWhereTheAxesSay() throws {
        var plot = LinePlot(title: "test", xLabel: "x", yLabel: "y", series: [
            .init(name: "rising", color: RGB(200, 10, 10), points: [(0, 0), (1, 1)]),
            .init(name: "flat", color: RGB(10, 10, 200), points: [(0, 0.25), (1, 0.25)]),
        ])
        plot.xRange = 0...1
        plot.yRange = 0...1
        let canvas = plot.render()
        // Plot area: x 64…(width − 16), y 34…(height − 44), as `render` lays it out.
        let (left, right, top, bottom) = (64.0, Double(plot.width - 16), 34.0, Double(plot.height - 44))
        func at(_ x: Double, _ y: Double) -> [Int] { [Int((left + (right - left) * x).rounded()), Int((bottom - (bottom - top) * y).rounded())] }
        let points = [at(0.5, 0.5), at(0.75, 0.75), at(0.5, 0.25), at(0.9, 0.6)]
        #expect(canvas[x: points[0][0], y: points[0][1]] == RGB(200, 10, 10))
        let probe = try decodeWithPillow(try canvas.png(), points: points)
        #expect(probe.error == nil, "\(probe.error ?? "")")
        #expect(probe.width == plot.width && probe.height == plot.height && probe.mode == "RGB")
        #expect(probe.values?[0] == [200, 10, 10])
        #expect(probe.values?[1] == [200, 10, 10])
        #expect(probe.values?[2] == [10, 10, 200])
        #expect(probe.values?[3] != [200, 10, 10] && probe.values?[3] != [10, 10, 200], "nothing drawn off the lines")
    }

    @Test func rocPlotFollowsTheCurve() throws {
        // A perfect Aneurysm Present column: the curve goes up the left edge, then along the top.
        var truth: [[Bool]] = [], predictions: [[Double]] = []
        for i in 0..<40 {
            var t = [Bool](repeating: false, count: 14)
            t[13] = i % 3 == 0
            t[4] = i % 5 == 0
            truth.append(t)
            var p = (0..<14).map { Double(($0 * 7 + i * 13) % 17) / 17 }
            p[13] = t[13] ? 0.9 : 0.1
            predictions.append(p)
        }
        let score = CompetitionScore(predictions: predictions, truth: truth)
        let plot = try #require(LinePlot.roc(predictions: predictions, truth: truth, score: score))
        #expect(plot.series.last?.name.contains("1.000") == true)
        let canvas = plot.render()
        let (left, right, top, bottom) = (64.0, Double(plot.width - 16), 34.0, Double(plot.height - 44))
        let red = RGB(214, 39, 40)
        #expect(canvas[x: Int(left + 1), y: Int((top + bottom) / 2)] == red, "up the left edge")
        #expect(canvas[x: Int((left + right) / 2), y: Int(top)] == red, "along the top")
        #expect(canvas[x: Int((left + right) / 2), y: Int((top + bottom) / 2) + 40] != red)
        #expect(LinePlot.roc(predictions: [[Double]](repeating: [Double](repeating: 0.5, count: 14), count: 3),
                             truth: [[Bool]](repeating: [Bool](repeating: false, count: 14), count: 3),
                             score: CompetitionScore(predictions: [], truth: [])) == nil)
    }

    /// A sphere in a volume with 3 mm slices and 1 mm pixels stays round in the coronal and sagittal MIPs
    /// (to within one slice; unstretched it would be 3 times wider than tall).
    @Test func projectionsKeepPhysicalProportions() throws {
        let (d, h, w) = (20, 60, 60)
        let g = Geometry(origin: .zero, spacing: Vector3(1, 1, 3), columnDirection: Vector3(1, 0, 0), rowDirection: Vector3(0, 1, 0),
                         sliceDirection: Vector3(0, 0, 1))
        var voxels = [Float](repeating: 0, count: d * h * w)
        let centre = Vector3(30, 30, 30)
        for k in 0..<d { for j in 0..<h { for i in 0..<w where (g.patient(i: Double(i), j: Double(j), k: Double(k)) - centre).length <= 14 {
            voxels[(k * h + j) * w + i] = 1000
        } } }
        let volume = try Volume(shape: (d, h, w), voxels: voxels, geometry: g)
        for view in [Projection.coronal, .sagittal] {
            let image = view.image(of: volume)
            #expect(image.width == 60 && image.height == 60, "\(view): \(image.width)×\(image.height)")
            func extent(_ bright: (Int) -> Bool, _ n: Int) -> Int { (0..<n).filter(bright).count }
            let row = image.height / 2, column = image.width / 2
            let across = extent({ image.pixels[row * image.width + $0] > 128 }, image.width)
            let down = extent({ image.pixels[$0 * image.width + column] > 128 }, image.height)
            #expect(abs(across - down) <= 3, "\(view): \(across) wide, \(down) tall, window \(image.pixels.max() ?? 0)")
        }
        let axial = Projection.axial.image(of: volume)
        #expect(axial.width == 60 && axial.height == 60)
    }

    /// The heatmap lies over the MIP in red, where it is, and leaves the grey image alone elsewhere.
    @Test func heatmapOverlayIsRedWhereTheHeatIs() throws {
        let (d, h, w) = (8, 10, 12)
        let g = Geometry(origin: .zero, spacing: Vector3(1, 1, 1), columnDirection: Vector3(1, 0, 0), rowDirection: Vector3(0, 1, 0),
                         sliceDirection: Vector3(0, 0, 1))
        let image = try Volume(shape: (d, h, w), voxels: (0..<(d * h * w)).map { Float($0 % 7) }, geometry: g)
        var heat = [Float](repeating: 0, count: d * h * w)
        heat[(4 * h + 3) * w + 5] = 1     // inside the central slab of every view
        let heatVolume = try Volume(shape: (d, h, w), voxels: heat, geometry: g)
        let axial = Projection.axial.overlay(image, heat: heatVolume)
        #expect(axial.width == w && axial.height == h)
        let hot = 3 * (3 * w + 5)
        #expect(Array(axial.rgb[hot..<(hot + 3)]) == [255, 0, 0])
        for n in 0..<(w * h) where n != 3 * w + 5 {
            #expect(axial.rgb[3 * n] == axial.rgb[3 * n + 1] && axial.rgb[3 * n + 1] == axial.rgb[3 * n + 2], "pixel \(n) is grey")
        }
        let coronal = Projection.coronal.overlay(image, heat: heatVolume)
        let row = d - 1 - 4  // head up
        #expect(Array(coronal.rgb[(3 * (row * w + 5))..<(3 * (row * w + 5) + 3)]) == [255, 0, 0])
    }
}
