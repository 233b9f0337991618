import Foundation
import Inference
import TestSupport
import Testing

@Suite struct ShardingTests {
    @Test func everySeriesLandsInExactlyOneShardWhateverTheListingOrder() {
        let folders = (0..<23).map { "series/\(String(format: "%03d", ($0 * 7) % 23))" }
        for n in 1...5 {
            let shards = (0..<n).map { Sharding.select(folders.shuffled(), shard: $0, of: n) }
            #expect(shards.flatMap { $0 }.sorted() == folders.sorted())
            #expect(Set(shards.flatMap { $0 }).count == folders.count)
            #expect(shards.allSatisfy { abs($0.count - folders.count / n) <= 1 })
            #expect(shards == (0..<n).map { Sharding.select(folders, shard: $0, of: n) }, "deterministic")
        }
        #expect(Sharding.parse("1/4")! == (1, 4))
        #expect(Sharding.parse("4/4") == nil && Sharding.parse("-1/2") == nil && Sharding.parse("1") == nil)
        #expect(Sharding.fromEnvironment(["RANK": "2", "WORLD_SIZE": "3"])! == (2, 3))
        #expect(Sharding.outputPath("out/submission.csv", shard: 1) == "out/submission.rank1.csv")
        #expect(Sharding.outputPath("shard{rank}.csv", shard: 3) == "shard3.csv")
        #expect(Sharding.outputPath("preds", shard: 0) == "preds.rank0")
        #expect(Sharding.fromEnvironment(["RANK": "3", "WORLD_SIZE": "3"]) == nil)
        #expect(Sharding.fromEnvironment([:]) == nil)
    }

    /// submission.csv reads back as exactly the probabilities written, so small ones keep their order
    /// (the AUC ranks them): 1e-9 and 3e-9 stay apart, as do two values closer than a millionth.
    @Test func submissionsReadBackExactly() throws {
        let dir = try temporaryDirectory()
        var p = (0..<14).map { 1 / Double($0 + 3) }
        p[0] = 1e-9
        p[1] = 3e-9
        p[2] = 0.5 + 1e-9
        p[3] = 0
        p[4] = 1
        p[5] = 5e-324
        try Data(Submission.encode([("a", p), ("b", p.reversed())]).utf8).write(to: URL(fileURLWithPath: "\(dir)/s.csv"))
        let read = try Submission.read("\(dir)/s.csv")
        #expect(read["a"] == p && read["b"] == p.reversed())
    }

    @Test func mergingShardsKeepsEveryRowOnceAndNamesRepeats() throws {
        let dir = try temporaryDirectory()
        let p = (0..<14).map { Double($0) / 20 }
        try Data(Submission.encode([("b", p), ("a", p)]).utf8).write(to: URL(fileURLWithPath: "\(dir)/0.csv"))
        try Data(Submission.encode([("c", p), ("a", p.map { 1 - $0 })]).utf8).write(to: URL(fileURLWithPath: "\(dir)/1.csv"))
        let merged = try Sharding.merge(["\(dir)/0.csv", "\(dir)/1.csv"])
        #expect(merged.rows.map(\.uid) == ["a", "b", "c"])
        #expect(merged.duplicates == ["a"])
        #expect(zip(merged.rows[0].probabilities, p).allSatisfy { abs($0 - $1) < 1e-6 }, "the first shard's row is kept")
    }
}
