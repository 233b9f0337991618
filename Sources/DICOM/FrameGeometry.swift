import VolumeCore

/// Where one frame (a slice) sits, and how its stored values become real ones.
struct FrameInfo {
    var file: String
    var frameIndex: Int
    var sopInstanceUID: String
    var position: Vector3?
    var orientation: [Double]?
    var pixelSpacing: [Double]?
    var sliceThickness: Double?
    var slope: Double
    var intercept: Double
    var rows: Int
    var columns: Int

    /// One FrameInfo per frame: from the per-frame and shared functional groups of an
    /// enhanced multi-frame object (PS3.3 C.7.6.16), or from the classic image plane module.
    static func frames(of set: DataSet, file: String) -> [FrameInfo] {
        let rows = set.int(.rows) ?? 0, columns = set.int(.columns) ?? 0
        let sop = set.string(.sopInstanceUID) ?? ""
        let count = max(1, set.int(.numberOfFrames) ?? 1)
        let shared = set.sequence(.sharedFunctionalGroups).first
        let perFrame = set.sequence(.perFrameFunctionalGroups)
        func position(_ s: DataSet) -> Vector3? {
            let v = s.numbers(.imagePositionPatient)
            return v.count == 3 ? Vector3(v[0], v[1], v[2]) : nil
        }
        func orientation(_ s: DataSet) -> [Double]? {
            let v = s.numbers(.imageOrientationPatient)
            return v.count == 6 ? v : nil
        }
        func spacing(_ s: DataSet) -> [Double]? {
            let v = s.numbers(.pixelSpacing)
            return v.count == 2 ? v : nil
        }
        // Classic (one frame per file, or a multi-frame without functional groups).
        let classic = FrameInfo(file: file, frameIndex: 0, sopInstanceUID: sop, position: position(set),
                                orientation: orientation(set), pixelSpacing: spacing(set),
                                sliceThickness: set.number(.sliceThickness),
                                slope: set.number(.rescaleSlope) ?? 1, intercept: set.number(.rescaleIntercept) ?? 0,
                                rows: rows, columns: columns)
        guard shared != nil || !perFrame.isEmpty else {
            return (0..<count).map { var f = classic; f.frameIndex = $0; return f }
        }
        // A functional group macro is found per frame first, then in the shared groups.
        func lookup<T>(_ frame: Int, _ sequence: Tag, _ read: (DataSet) -> T?) -> T? {
            if frame < perFrame.count, let item = perFrame[frame].sequence(sequence).first, let v = read(item) { return v }
            if let item = shared?.sequence(sequence).first, let v = read(item) { return v }
            return nil
        }
        return (0..<count).map { i in
            var f = classic
            f.frameIndex = i
            f.position = lookup(i, .planePositionSequence, position) ?? classic.position
            f.orientation = lookup(i, .planeOrientationSequence, orientation) ?? classic.orientation
            f.pixelSpacing = lookup(i, .pixelMeasuresSequence, spacing) ?? classic.pixelSpacing
            f.sliceThickness = lookup(i, .pixelMeasuresSequence) { $0.number(.sliceThickness) } ?? classic.sliceThickness
            f.slope = lookup(i, .pixelValueTransformationSequence) { $0.number(.rescaleSlope) } ?? classic.slope
            f.intercept = lookup(i, .pixelValueTransformationSequence) { $0.number(.rescaleIntercept) } ?? classic.intercept
            return f
        }
    }
}
