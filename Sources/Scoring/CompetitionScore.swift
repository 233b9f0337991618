import Anatomy

/// The RSNA Intracranial Aneurysm Detection metric: the mean of AUC("Aneurysm Present") and
/// the mean AUC of the 13 locations (equivalently, a weighted mean with weight 13 on
/// "Aneurysm Present" and 1 on each location).
public struct CompetitionScore: Sendable, Equatable {
    /// AUC per label, nil where the labels of that column hold one class only.
    public var auc: [LocationLabel: Double?]
    public var score: Double?
    /// Mean AUC over the locations whose AUC is defined.
    public var meanLocationAUC: Double?
    /// Locations left out of the mean because their AUC is undefined.
    public var undefined: [LocationLabel]

    /// `predictions[i]` and `truth[i]` hold the 14 values of series i in `LocationLabel` order.
    public init(predictions: [[Double]], truth: [[Bool]]) {
        precondition(predictions.count == truth.count, "predictions and labels differ in series count")
        var auc: [LocationLabel: Double?] = [:]
        for label in LocationLabel.allCases {
            auc[label] = areaUnderROC(scores: predictions.map { $0[label.rawValue] }, labels: truth.map { $0[label.rawValue] })
        }
        let defined = LocationLabel.locations.compactMap { auc[$0] ?? nil }
        undefined = LocationLabel.locations.filter { (auc[$0] ?? nil) == nil }
        meanLocationAUC = defined.isEmpty ? nil : defined.reduce(0, +) / Double(defined.count)
        if let present = auc[.aneurysmPresent] ?? nil, let locations = meanLocationAUC {
            score = (present + locations) / 2
        } else {
            score = nil
        }
        self.auc = auc
    }
}
