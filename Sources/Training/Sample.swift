import Anatomy

/// One preprocessed training example: the network input [D, H, W] and its 14 labels.
public struct Sample: Sendable {
    public var id: String
    public var input: [Float]
    public var labels: [Bool]

    public init(id: String, input: [Float], labels: [Bool]) {
        precondition(labels.count == LocationLabel.allCases.count, "14 labels expected")
        self.id = id
        self.input = input
        self.labels = labels
    }

    /// The sample mirrored left-right: the volume flipped along its width (the patient's x axis in the
    /// canonical LPS+ layout) and every Left/Right location label swapped with its twin.
    public func flippedLeftRight(shape: [Int]) -> Sample {
        let (d, h, w) = (shape[0], shape[1], shape[2])
        var out = [Float](repeating: 0, count: input.count)
        for k in 0..<d { for j in 0..<h {
            let row = (k * h + j) * w
            for i in 0..<w { out[row + i] = input[row + w - 1 - i] }
        } }
        var swapped = labels
        for l in LocationLabel.allCases { swapped[l.mirrored.rawValue] = labels[l.rawValue] }
        return Sample(id: id, input: out, labels: swapped)
    }
}
