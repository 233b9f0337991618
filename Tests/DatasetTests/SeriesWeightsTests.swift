import Dataset
import Foundation
import TestSupport
import Testing

@Suite struct SeriesWeightsTests {
    func write(_ text: String) throws -> String {
        let path = "\(try temporaryDirectory())/weights.csv"
        try text.write(toFile: path, atomically: false, encoding: .utf8)
        return path
    }

    func error(_ text: String) throws -> DatasetError? {
        let path = try write(text)
        do {
            _ = try SeriesWeights.read(path)
            return nil
        } catch let e as DatasetError {
            return e
        }
    }

    /// The columns are found by name (in any order, beside others), values may carry spaces and
    /// exponents, and a zero weight is kept.
    @Test func readsWeightsByColumnName() throws {
        let path = try write("note,weight,SeriesInstanceUID\r\nhard, 2.5 ,1.2.3\r\n,0,1.2.4\r\nx,1e-1,1.2.5\r\n")
        #expect(try SeriesWeights.read(path) == ["1.2.3": 2.5, "1.2.4": 0, "1.2.5": 0.1])
    }

    /// Every way a weight can be unusable is refused with its line; so are tables that cannot say
    /// what to draw.
    @Test func refusesUnusableTables() throws {
        let header = "SeriesInstanceUID,weight\n"
        #expect(try error("")?.reason == "empty file")
        #expect(try error("SeriesInstanceUID,w\n1.2.3,1\n")?.line == 1)
        for bad in ["-1", "nan", "inf", "two", ""] {
            let e = try error(header + "1.2.3,1\n1.2.4,\(bad)\n")
            #expect(e?.line == 3 && e?.reason.contains("not a finite number") == true, "weight '\(bad)': \(String(describing: e))")
        }
        #expect(try error(header + "1.2.3,1\n1.2.3,2\n")?.reason == "series 1.2.3 already listed on line 2")
        #expect(try error(header + "1.2.3,1,extra\n")?.line == 2)
        #expect(try error(header + ",1\n")?.reason == "empty SeriesInstanceUID")
        #expect(try error(header + "1.2.3,0\n1.2.4,0\n")?.reason == "no series has a weight above zero")
        #expect(try error(header)?.reason == "no series has a weight above zero")
    }
}
