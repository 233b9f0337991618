import Anatomy
import Dataset
import Foundation
import Preprocessing
import Torch

/// `willis location-prior`: fits the location prior (see `LocationPrior`) to an RSNA folder's localizers
/// and stores it in detector weights that lack one (weights trained before `willis train` fitted it
/// itself), or replaces theirs. The series are prepared as the weights say, through the same cache as
/// training, so the points lie in the frame the detector's heatmap is read in.
public struct LocationPriorFit {
    public var dataRoot: String
    public var weights: String
    /// Where to write the weights with the prior (default: `weights` itself, replaced atomically).
    public var output: String?
    public var cacheRoot: String?
    public var log: (String) -> Void = { print($0) }
    public var cacheProgress: @Sendable (Int, Int) -> Void = { _, _ in }

    public init(dataRoot: String, weights: String) {
        self.dataRoot = dataRoot
        self.weights = weights
    }

    @discardableResult
    public func run() throws -> LocationPrior {
        let file = try SafeTensorsFile(path: weights)
        guard file.metadata["willis_model"] == "detector" else {
            throw TorchError.safetensors(path: weights, reason: "not detector weights: only the detector's heatmap is read with a location prior")
        }
        let preparation = try file.metadata[Preparation.metadataKey].map { try Preparation.from(json: $0) } ?? Preparation()
        guard preparation.mode == .improved else {
            throw TorchError.safetensors(path: weights, reason: "the weights prepare series in \(preparation.mode.rawValue) mode; the prior lives in the improved mode's crop")
        }
        let labels = try RSNATables.readLabels("\(dataRoot)/train.csv")
        let cache = PreprocessedCache(root: cacheRoot ?? "\(dataRoot)/.willis-cache", preparation: preparation)
        let localizers = try TrainingRun.localizers(dataRoot)
        // Only the series with localizers carry points; the others need no preparing.
        let items = labels.filter { localizers[$0.seriesInstanceUID] != nil }.map { (uid: $0.seriesInstanceUID, modality: $0.modality.rawValue) }
        let failed = try cache.build(items, seriesRoot: "\(dataRoot)/series", localizers: localizers,
                                     segmentationRoot: "\(dataRoot)/segmentations", progress: cacheProgress)
        for f in failed { log("skipped series \(f.uid): \(f.error)") }
        let failedUIDs = Set(failed.map(\.uid))
        let uids = items.map(\.uid).filter { !failedUIDs.contains($0) }
        guard let prior = try TrainingRun.fitLocationPrior(cache: cache, uids: uids, preparation: preparation) else {
            throw DatasetError(file: "\(dataRoot)/train_localizers.csv", reason: "no localizer point lies in a prepared crop")
        }
        var metadata = file.metadata
        metadata[LocationPrior.metadataKey] = prior.json
        let tensors = try file.names.filter { !$0.hasPrefix("__") }.map { ($0, try file.tensor($0)) }
        try SafeTensors.write(tensors, metadata: metadata, to: output ?? weights)
        log("location prior fitted to \(prior.components.map(\.count).reduce(0, +)) localizer points of \(uids.count) series; written to \(output ?? weights)")
        return prior
    }
}
