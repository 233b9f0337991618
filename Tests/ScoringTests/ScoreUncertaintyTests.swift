import Foundation
import Scoring
import TestSupport
import Testing

@Suite struct ScoreUncertaintyTests {
    struct Oracle: Decodable {
        var truth: [[Int]]; var a: [[Double]]; var b: [[Double]]; var rows: [[Int]]
        var score: Double; var interval: [Double]; var defined: Int
        var difference: Double; var differenceInterval: [Double]; var differenceDefined: Int; var shareAboveZero: Double
    }

    /// On resamples drawn by numpy, the interval and the paired difference equal scikit-learn's scores
    /// and numpy's percentiles.
    @Test func intervalsMatchScikitLearnOnTheSameResamples() throws {
        let o = try JSONDecoder().decode(Oracle.self, from: Data(contentsOf: URL(fileURLWithPath: fixture("bootstrap.json", generator: "bootstrap.py"))))
        let truth = o.truth.map { $0.map { $0 == 1 } }
        let single = try #require(ScoreUncertainty.score(predictions: o.a, truth: truth, rows: o.rows))
        #expect(abs(single.estimate - o.score) < 1e-12)
        #expect(abs(single.lower - o.interval[0]) < 1e-12 && abs(single.upper - o.interval[1]) < 1e-12, "\(single) vs \(o.interval)")
        #expect(single.defined == o.defined && single.shareAboveZero == nil)
        let paired = try #require(ScoreUncertainty.difference(o.a, o.b, truth: truth, rows: o.rows))
        #expect(abs(paired.estimate - o.difference) < 1e-12)
        #expect(abs(paired.lower - o.differenceInterval[0]) < 1e-12 && abs(paired.upper - o.differenceInterval[1]) < 1e-12)
        #expect(paired.defined == o.differenceDefined && abs((paired.shareAboveZero ?? -1) - o.shareAboveZero) < 1e-12)
    }

    /// Drawn resamples: the interval holds the score and narrows with more series; a prediction compared
    /// with itself differs by exactly zero; one that knows the labels beats one that does not.
    @Test func drawnIntervalsBehave() throws {
        let o = try JSONDecoder().decode(Oracle.self, from: Data(contentsOf: URL(fileURLWithPath: fixture("bootstrap.json", generator: "bootstrap.py"))))
        let truth = o.truth.map { $0.map { $0 == 1 } }
        var rng = SystemRandomNumberGenerator()
        let small = try #require(ScoreUncertainty.score(predictions: o.a, truth: truth, resamples: 400, using: &rng))
        #expect(small.lower <= small.estimate && small.estimate <= small.upper && small.lower < small.upper)
        let four = Array(repeating: o.a, count: 4).flatMap { $0 }, fourTruth = Array(repeating: truth, count: 4).flatMap { $0 }
        let large = try #require(ScoreUncertainty.score(predictions: four, truth: fourTruth, resamples: 400, using: &rng))
        #expect(abs(large.estimate - small.estimate) < 1e-12)
        #expect(large.upper - large.lower < 0.75 * (small.upper - small.lower), "4× the series: \(large) vs \(small)")
        let same = try #require(ScoreUncertainty.difference(o.a, o.a, truth: truth, resamples: 100, using: &rng))
        #expect(same.estimate == 0 && same.lower == 0 && same.upper == 0 && same.shareAboveZero == 0)
        let knowing = truth.map { $0.map { $0 ? 0.9 : 0.1 } }
        let better = try #require(ScoreUncertainty.difference(knowing, o.b, truth: truth, resamples: 200, using: &rng))
        #expect(better.lower > 0 && better.shareAboveZero == 1)
    }
}
