/// Training stopped because a loss was not finite. Every step after it would train NaN weights, so the
/// run stops there, before writing that epoch's checkpoint, weights or log line, and says what to try.
public struct TrainingDiverged: Error, CustomStringConvertible {
    /// Where the loss was seen: "epoch 2, batch 5 of 12", "the validation after epoch 3", "step 812 of 32000".
    public var place: String
    /// The loss that was not finite (NaN or ±infinity).
    public var loss: Double
    /// What to try instead, e.g. "a lower learning rate (now 0.001)".
    public var remedy: String

    public init(place: String, loss: Double, remedy: String = "a lower learning rate") {
        (self.place, self.loss, self.remedy) = (place, loss, remedy)
    }

    public var description: String {
        "training diverged at \(place): the loss is \(loss.isNaN ? "NaN" : String(loss)); the run stopped without writing weights from there on; try \(remedy)"
    }
}
