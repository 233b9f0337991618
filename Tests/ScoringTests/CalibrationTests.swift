import Anatomy
import Foundation
import Scoring
import TestSupport
import Testing

/// The second stage's calibration, against scikit-learn's logistic regression, and the reliability
/// figures `willis evaluate` prints.
@Suite struct CalibrationTests {
    struct Case: Decodable { var scores: [Double]; var labels: [Int]; var slope: Double; var intercept: Double }
    struct Oracle: Decodable { var ridge: Double; var cases: [Case] }

    @Test func fitMatchesScikitLearn() throws {
        let path = try fixture("calibration.json", generator: "calibration.py")
        let o = try JSONDecoder().decode(Oracle.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(o.cases.count == 3)
        for (n, c) in o.cases.enumerated() {
            let labels = c.labels.map { $0 == 1 }
            let fit = try #require(CandidateCalibration.fit(scores: c.scores, labels: labels, ridge: o.ridge, source: "case \(n)"))
            #expect(abs(fit.slope - c.slope) < 1e-5 && abs(fit.intercept - c.intercept) < 1e-5,
                    "case \(n): \(fit.slope), \(fit.intercept) against scikit-learn's \(c.slope), \(c.intercept)")
            #expect(fit.peaks == c.scores.count && fit.positives == labels.filter { $0 }.count && fit.source == "case \(n)")
            // The intercept is free, so the mean calibrated probability is the positives' share.
            let mean = c.scores.map { fit($0) }.reduce(0, +) / Double(c.scores.count)
            #expect(abs(mean - Double(fit.positives) / Double(fit.peaks)) < 1e-8)
            // Increasing: the scores keep their order.
            let sorted = c.scores.sorted()
            #expect(zip(sorted, sorted.dropFirst()).allSatisfy { fit($0) <= fit($1) })
        }
    }

    @Test func fitIsRefusedWhereNothingCanBeCalibrated() throws {
        #expect(CandidateCalibration.fit(scores: [0.1, 0.5, 0.9], labels: [false, false, false]) == nil)
        #expect(CandidateCalibration.fit(scores: [0.1, 0.5, 0.9], labels: [true, true, true]) == nil)
        #expect(CandidateCalibration.fit(scores: [0.1, 0.5], labels: [true]) == nil)
        // Positives below the negatives: the map would reverse the order.
        #expect(CandidateCalibration.fit(scores: [0.1, 0.2, 0.8, 0.9], labels: [true, true, false, false]) == nil)
        // Separable labels still give a finite, increasing map, thanks to the ridge.
        let separable = try #require(CandidateCalibration.fit(scores: [0.1, 0.2, 0.8, 0.9], labels: [false, false, true, true]))
        #expect(separable.slope.isFinite && separable.slope > 1 && separable(0.9) > 0.99 && separable(0.1) < 0.01)
        // Scores that are not finite count as 0 and give a probability, not NaN.
        #expect(separable(.nan) == separable(0) && separable(.nan).isFinite)
    }

    @Test func reliabilityCountsTheBands() throws {
        let r = try #require(Reliability(probabilities: [0.1, 0.3, 0.9, 0.95, 1.0], labels: [false, true, true, false, true]))
        let p = [0.1, 0.3, 0.9, 0.95, 1.0], y = [0.0, 1, 1, 0, 1]
        #expect(abs(r.brier - zip(p, y).map { ($0 - $1) * ($0 - $1) }.reduce(0, +) / 5) < 1e-12)
        #expect(abs(r.prevalence - 0.6) < 1e-12 && abs(r.brierOfPrevalence - 0.24) < 1e-12 && abs(r.meanPredicted - 3.25 / 5) < 1e-12)
        #expect(r.bands.map(\.count) == [1, 1, 3], "0.1 in the first band, 0.3 in the second, 0.9 to 1.0 in the last")
        #expect(r.bands.map(\.lower) == [0, 0.2, 0.8] && r.bands.map(\.upper) == [0.2, 0.4, 1.0])
        #expect(abs(r.bands[2].meanPredicted - 2.85 / 3) < 1e-12 && abs(r.bands[2].observed - 2.0 / 3) < 1e-12)
        #expect(Reliability(probabilities: [0.1, .nan], labels: [false, true]) == nil)
        #expect(Reliability(probabilities: [], labels: []) == nil)
    }
}
