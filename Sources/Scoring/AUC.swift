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

/// The ROC curve's corners: (false positive rate, true positive rate) from (0, 0), one point per
/// distinct score from the highest down, to (1, 1); tied scores move both rates at once. Equals
/// scikit-learn's `roc_curve(..., drop_intermediate=False)`. Nil with one class only.
public func rocCurve(scores: [Double], labels: [Bool]) -> [(falsePositiveRate: Double, truePositiveRate: Double)]? {
    precondition(scores.count == labels.count, "scores and labels differ in length")
    let positives = Double(labels.filter { $0 }.count)
    let negatives = Double(labels.count) - positives
    guard positives > 0, negatives > 0 else { return nil }
    let order = scores.indices.sorted { scores[$0] > scores[$1] }
    var points = [(falsePositiveRate: 0.0, truePositiveRate: 0.0)]
    var tp = 0.0, fp = 0.0, i = 0
    while i < order.count {
        var j = i
        while j < order.count && scores[order[j]] == scores[order[i]] {
            if labels[order[j]] { tp += 1 } else { fp += 1 }
            j += 1
        }
        points.append((fp / negatives, tp / positives))
        i = j
    }
    return points
}
