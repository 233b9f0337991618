import Anatomy
import DICOM
import Foundation
import Models
import Preprocessing
import Torch

/// Prediction: a series folder → the volume read correctly → the preparation the weights were trained
/// with → UNet3D → 14 probabilities.
public final class Predictor {
    public let model: UNet3D
    /// The model with batch norm folded into its convolutions (channels-last on the CPU), for speed.
    let inference: FoldedUNet3D
    /// How series are prepared: from the weights' metadata (`willis train` stores it), else the
    /// reference mode at 64×128×128 (the notebook's own weights carry none).
    public let preparation: Preparation
    public var inputShape: [Int] { preparation.shape }
    let device: Device

    /// Loads weights saved by `willis train` or exported from the notebook (state_dict names);
    /// the base width is read from `enc1.0.weight`. `preparation` overrides what the file says.
    public init(weights path: String, preparation override: Preparation? = nil, device: Device = .cpu) throws {
        let file = try SafeTensorsFile(path: path)
        guard let first = file.entry("enc1.0.weight"), first.shape.count == 5 else {
            throw TorchError.safetensors(path: path, reason: "no enc1.0.weight: not UNet3D weights")
        }
        model = try UNet3D(baseFilters: first.shape[0], device: device)
        var tensors: [String: Tensor] = [:]
        for name in file.names where !name.hasPrefix("__") { tensors[name] = try file.tensor(name) }
        try model.store.load(tensors)
        model.store.isTraining = false
        if let override {
            preparation = override
        } else if let json = file.metadata[Preparation.metadataKey] {
            preparation = try Preparation.from(json: json)
        } else {
            preparation = Preparation()
        }
        try preparation.validate()
        inference = try model.foldedForInference()
        self.device = device
    }

    /// Probabilities for the one series under `folder` (or a multi-frame file).
    public func predict(series folder: String) throws -> (uid: String, probabilities: [Double], warnings: [String]) {
        try predict(SeriesLoader().load(folder))
    }

    /// Probabilities for a series already read.
    public func predict(_ series: Series) throws -> (uid: String, probabilities: [Double], warnings: [String]) {
        (series.seriesInstanceUID, try infer(prepare(series)), series.warnings)
    }

    /// The network input for `series` (CPU work only; safe on any thread).
    public func prepare(_ series: Series) -> [Float] {
        preparation.prepare(series.volume, modality: series.modality).input
    }

    /// The 14 probabilities for one prepared input.
    public func infer(_ input: [Float]) throws -> [Double] {
        let x = try Tensor(input, shape: [1, 1] + inputShape, device: device)
        return try inference(x).floats().map(Double.init)
    }
}
