import Dataset
import Foundation
import TestSupport
import Testing
import Torch
import Training

@Suite(.serialized) struct SeriesSamplingTests {
    /// A row of 14 labels with aneurysms at `locations` (Aneurysm Present set when any is).
    func row(_ locations: [Int], present: Bool? = nil) -> [Bool] {
        var r = [Bool](repeating: false, count: 14)
        for l in locations { r[l] = true }
        r[13] = present ?? !locations.isEmpty
        return r
    }

    /// Drawn many times, every modality gets the same share of draws; within one, positives and
    /// negatives half each; within the positives, every location the same share.
    @Test func drawsAreBalancedAcrossModalitiesAndLocations() {
        // Modality 0: 30 negatives, 12 at location 4, 2 at location 11. Modality 1: 5 negatives, 1 at 6.
        // Modality 2 (only positives): 3 at location 0. Unknown modality: 4 negatives.
        var labels: [[Bool]] = [], modalities: [Int?] = []
        func add(_ n: Int, _ locations: [Int], _ modality: Int?) {
            for _ in 0..<n { labels.append(row(locations)); modalities.append(modality) }
        }
        add(30, [], 0); add(12, [4], 0); add(2, [11], 0)
        add(5, [], 1); add(1, [6], 1)
        add(3, [0], 2)
        add(4, [], nil)
        let sampling = BalancedSampling(labels: labels, modalities: modalities)
        #expect(abs(sampling.weights.reduce(0, +) - 1) < 1e-12)
        var rng = SplitMix64(seed: 5)
        let n = 400_000
        let draws = sampling.draw(n, using: &rng)
        var count = [Int](repeating: 0, count: labels.count)
        for i in draws { count[i] += 1 }
        func share(_ which: (Int) -> Bool) -> Double {
            Double((0..<labels.count).filter(which).reduce(0) { $0 + count[$1] }) / Double(n)
        }
        for m in [0, 1, 2, nil] as [Int?] { #expect(abs(share { modalities[$0] == m } - 0.25) < 0.005, "modality \(String(describing: m))") }
        #expect(abs(share { modalities[$0] == 0 && labels[$0][4] } - 0.0625) < 0.004, "location 4 of modality 0: a quarter of its half")
        #expect(abs(share { modalities[$0] == 0 && labels[$0][11] } - 0.0625) < 0.004, "location 11 as often as location 4")
        #expect(abs(share { modalities[$0] == 1 && labels[$0][6] } - 0.125) < 0.004, "the one positive of modality 1: its half")
        #expect(abs(share { modalities[$0] == 0 && !labels[$0][13] } - 0.125) < 0.004)
        // Within a location, each series equally often: 2 series share location 11's 1/16.
        #expect(abs(Double(count[42]) / Double(n) - 1.0 / 32) < 0.002)
    }

    /// The weights by the rule, computed independently: a series at two locations collects a part from
    /// each; one present without a location is a location of its own; modalities absent from the
    /// list count as unknown.
    @Test func weightsFollowTheRule() {
        let labels = [row([2, 5]), row([5]), row([]), row([], present: true), row([2])]
        let sampling = BalancedSampling(labels: labels, modalities: [0, 0, 0, 0])
        // Two groups (modality 0 and the unknown fifth series); in modality 0 three keys: 2, 5, present.
        let group = 0.5, positive = 0.5
        let expected = [group * positive * (1.0 / 1 + 1.0 / 2) / 3, group * positive * (1.0 / 2) / 3,
                        group * (1 - positive), group * positive * (1.0 / 1) / 3, group]
        #expect(zip(sampling.weights, expected).allSatisfy { abs($0 - $1) < 1e-12 }, "\(sampling.weights) against \(expected)")
    }

    /// Drawn many times, each index comes up in proportion to its weight, and one of weight zero never.
    @Test func weightedDrawsFollowTheWeights() {
        let weights = [0.5, 0, 3, 1, 1.5, 0]
        var rng = SplitMix64(seed: 9)
        let n = 300_000
        var count = [Int](repeating: 0, count: weights.count)
        for i in WeightedDraw(weights: weights).draw(n, using: &rng) { count[i] += 1 }
        let total = weights.reduce(0, +)
        for (i, w) in weights.enumerated() {
            #expect(abs(Double(count[i]) / Double(n) - w / total) < 0.004, "index \(i): \(count[i]) of \(n) at weight \(w)")
        }
        #expect(count[1] == 0 && count[5] == 0)
        #expect(WeightedDraw(weights: [0, 0]).draw(5, using: &rng).isEmpty && WeightedDraw(weights: []).draw(5, using: &rng).isEmpty)
    }

    /// The trainer's epochs follow the configured sampling: uniform sees every series once an epoch; a
    /// balanced one draws the only series of a rare modality about as often as the nine of the other; a
    /// weighted one never reads a series of weight 0 and reads a heavy one often (series not listed weigh 1).
    @Test func trainingEpochsDrawTheConfiguredSampling() throws {
        _ = try engine()
        try Torch.setThreadCount(1)
        let shape = [16, 32, 32]
        final class Reads: @unchecked Sendable {
            let lock = NSLock()
            var ids: [Int] = []
            func add(_ i: Int) { lock.lock(); ids.append(i); lock.unlock() }
        }
        func epochs(_ sampling: SeriesSampling, weights: [String: Double] = [:]) throws -> [Int] {
            let reads = Reads()
            var set = SampleSet(ids: (0..<10).map { "s\($0)" }, labels: (0..<10).map { row($0 < 3 ? [4] : []) }) { i in
                reads.add(i)
                return (0..<(16 * 32 * 32)).map { Float(($0 * (i + 3)) % 17) / 17 }
            }
            set.modalities = [1] + [Int?](repeating: 0, count: 9)
            var config = TrainingConfig()
            config.baseFilters = 4
            config.inputShape = shape
            config.seed = 3
            config.sampling = sampling
            config.seriesWeights = weights
            let trainer = try Trainer(config: config)
            for _ in 0..<4 { _ = try trainer.trainEpoch(set) }
            return reads.ids
        }
        let uniform = try epochs(.uniform)
        #expect(uniform.count == 40 && (0..<10).allSatisfy { i in uniform.filter { $0 == i }.count == 4 })
        let balanced = try epochs(.balanced)
        #expect(balanced.count == 40)
        // Series 0 (the rare modality) has half of all draws in expectation: 20 of 40 (binomial sd 3.2).
        let rare = balanced.filter { $0 == 0 }.count
        #expect(rare >= 10, "the one series of the rare modality was drawn \(rare) times in 40")
        // s1 weighs 9 of 17 (s0 0, the other eight 1 each): 21 of 40 draws in expectation (sd 3.2).
        let weighted = try epochs(.weighted, weights: ["s0": 0, "s1": 9, "unknown": 5])
        #expect(weighted.count == 40 && !weighted.contains(0))
        let heavy = weighted.filter { $0 == 1 }.count
        #expect(heavy >= 11, "the series of weight 9 was drawn \(heavy) times in 40")
        #expect(Set(weighted).count > 3, "the series not listed are drawn too")
    }
}
