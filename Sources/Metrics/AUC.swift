/// Area under the ROC curve, equal to scikit-learn's `roc_auc_score` including ties:
/// the Mann–Whitney U statistic with average ranks. Nil when the labels hold one class only
/// (the AUC is undefined; scikit-learn raises).
public func areaUnderROC(scores: [Double], labels: [Bool]) -> Double? {
    precondition(scores.count == labels.count, "scores and labels differ in length")
    let positives = labels.filter { $0 }.count
    let negatives = labels.count - positives
    guard positives > 0, negatives > 0 else { return nil }
    let order = scores.indices.sorted { scores[$0] < scores[$1] }
    // Sum of the (average) ranks of the positives, ranks starting at 1.
    var rankSum = 0.0
    var i = 0
    while i < order.count {
        var j = i
        while j + 1 < order.count && scores[order[j + 1]] == scores[order[i]] { j += 1 }
        let averageRank = Double(i + j) / 2 + 1
        for k in i...j where labels[order[k]] { rankSum += averageRank }
        i = j + 1
    }
    let u = rankSum - Double(positives) * Double(positives + 1) / 2
    return u / (Double(positives) * Double(negatives))
}
