import Anatomy
import Foundation
import Scoring
import TestSupport
import Testing

@Suite struct AUCTests {
    struct Curve: Decodable { var fpr: [Double]; var tpr: [Double] }
    struct Oracle: Decodable { var scores: [[Double]]; var truth: [[Int]]; var auc: [Double?]; var score: Double; var roc: [Curve?] }

    @Test func matchesScikitLearnWithTies() throws {
        let path = try fixture("auc.json", generator: "auc.py")
        let o = try JSONDecoder().decode(Oracle.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
        let truth = o.truth.map { $0.map { $0 == 1 } }
        let result = CompetitionScore(predictions: o.scores, truth: truth)
        for label in LocationLabel.allCases {
            let ours = result.auc[label] ?? nil
            switch o.auc[label.rawValue] {
            case let expected?:
                #expect(ours.map { abs($0 - expected) < 1e-12 } == true, "\(label): \(String(describing: ours)) vs \(expected)")
            case nil:
                #expect(ours == nil, "\(label) has one class only")
            }
        }
        #expect(result.undefined == [.otherPosteriorCirculation])
        #expect(abs((result.score ?? 0) - o.score) < 1e-12)
    }

    @Test func rocCurveMatchesScikitLearnWithTies() throws {
        let path = try fixture("auc.json", generator: "auc.py")
        let o = try JSONDecoder().decode(Oracle.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
        for c in 0..<14 {
            let labels = o.truth.map { $0[c] == 1 }
            let ours = rocCurve(scores: o.scores.map { $0[c] }, labels: labels)
            guard let expected = o.roc[c] else {
                #expect(ours == nil)
                continue
            }
            let points = try #require(ours)
            #expect(points.count == expected.fpr.count, "column \(c)")
            #expect(zip(points.map(\.truePositiveRate), expected.tpr).allSatisfy { abs($0 - $1) < 1e-12 }, "column \(c)")
            #expect(zip(points.map(\.falsePositiveRate), expected.fpr).allSatisfy { abs($0 - $1) < 1e-12 }, "column \(c)")
        }
    }

    @Test func edgeCases() {
        #expect(areaUnderROC(scores: [0.1, 0.9], labels: [false, true]) == 1)
        #expect(areaUnderROC(scores: [0.9, 0.1], labels: [false, true]) == 0)
        #expect(areaUnderROC(scores: [0.5, 0.5, 0.5], labels: [false, true, true]) == 0.5)
        #expect(areaUnderROC(scores: [0.2, 0.3], labels: [true, true]) == nil)
    }

    @Test func labelsRoundTripAndMirror() {
        #expect(LocationLabel.allCases.count == 14 && LocationLabel.locations.count == 13)
        for l in LocationLabel.allCases {
            #expect(LocationLabel(columnName: l.columnName) == l)
            #expect(l.mirrored.mirrored == l)
        }
        #expect(LocationLabel.leftMCA.mirrored == .rightMCA)
        #expect(LocationLabel.basilarTip.mirrored == .basilarTip)
    }
}

/// Detection scoring on a case small enough to follow by hand.
@Suite struct DetectionScoreTests {
    @Test func ranksAndFROCFollowTheCandidates() {
        let truth = ["a": [[0.0, 0, 0], [100.0, 0, 0]], "b": [[Double]]()]
        let candidates: [String: [DetectionScore.Candidate]] = [
            "a": [.init(lps: [1, 0, 0], probability: 0.9), .init(lps: [50, 0, 0], probability: 0.8),
                  .init(lps: [0, 2, 0], probability: 0.7), .init(lps: [104, 0, 3], probability: 0.6)],
            "b": [.init(lps: [0, 0, 0], probability: 0.85)],
        ]
        let s = DetectionScore(truth: truth, candidates: candidates, radius: 7)
        #expect(s.aneurysms == 2 && s.series == 2)
        // The first aneurysm at rank 1; the second (5 mm from the candidate at 0.6) at rank 4.
        #expect(s.foundAtRank == [1, 1, 1, 2, 2])
        // 0.9 finds one; 0.85 and 0.8 are false; 0.7 repeats a found aneurysm (neither); 0.6 finds the second.
        #expect(s.froc.map(\.sensitivity) == [0.5, 0.5, 0.5, 0.5, 1.0])
        #expect(s.froc.map(\.falsePositivesPerSeries) == [0, 0.5, 1, 1, 1])
        #expect(s.sensitivity(atFalsePositivesPerSeries: 0.25) == 0.5 && s.sensitivity(atFalsePositivesPerSeries: 1) == 1)
        // A tighter radius misses the second aneurysm.
        #expect(DetectionScore(truth: truth, candidates: candidates, radius: 4).foundAtRank[4] == 1)
    }

    @Test func aSizeRangeAndFalsePositivesPerNegativeSeries() {
        // Series a: a small aneurysm (counted) at the origin and a large one (not counted) at x = 100.
        let targets: [String: [DetectionScore.Target]] = [
            "a": [.init(lps: [0, 0, 0]), .init(lps: [100, 0, 0], counted: false)], "b": [], "c": [],
        ]
        let candidates: [String: [DetectionScore.Candidate]] = [
            "a": [.init(lps: [100, 0, 0], probability: 0.95), .init(lps: [60, 0, 0], probability: 0.9),
                  .init(lps: [0, 1, 0], probability: 0.5)],
            "b": [.init(lps: [0, 0, 0], probability: 0.8)],
            "c": [.init(lps: [0, 0, 0], probability: 0.3)],
        ]
        let s = DetectionScore(targets: targets, candidates: candidates, radius: 7)
        #expect(s.aneurysms == 1 && s.series == 3 && s.negativeSeries == 2)
        // The large aneurysm's candidate is neither a hit nor a false positive; the one at x = 60 is a
        // false positive in a positive series; b's and c's count per negative series.
        #expect(s.froc.map(\.sensitivity) == [0, 0, 0, 1, 1])
        let third: Double = 1.0 / 3
        #expect(s.froc.map(\.falsePositivesPerSeries) == [0, third, 2 * third, 2 * third, 1])
        let perNegative: [Double] = [0, 0, 0.5, 0.5, 1]
        #expect(s.froc.map(\.falsePositivesPerNegativeSeries) == perNegative)
        #expect(s.sensitivity(atFalsePositivesPerNegativeSeries: 0.1) == 0)
        #expect(s.sensitivity(atFalsePositivesPerNegativeSeries: 0.5) == 1)
        #expect(s.foundAtRank == [0, 0, 1, 1, 1])
    }
}
