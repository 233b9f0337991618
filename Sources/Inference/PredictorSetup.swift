import Anatomy
import Foundation
import Models
import Preprocessing
import Torch

/// What predicts a series, and how it was told to: the files (detector weights, a second stage) and
/// the options of `willis predict`. A results folder's run.json records it, so that `willis serve`
/// predicts an uploaded series exactly as the folder's other series were predicted.
public struct PredictorSetup: Codable, Sendable, Equatable {
    /// Detector or reference weights (an ensemble when several); empty with a second stage trained with
    /// no detector.
    public var weights: [String] = []
    /// The second stage (an ensemble when several).
    public var candidateClassifiers: [String] = []
    /// How the second stage's score is made; nil: the classifier's alone with no detector, else the
    /// geometric mean with the heatmap.
    public var candidateScoring: CandidateScoring?
    /// Map the second stage's scores through the calibrations its weights carry.
    public var calibrated = true
    /// Overrides of the weights' preparation.
    public var inputShape: [Int]?
    public var mode: Preparation.Mode?
    /// The detector's sliding window: nil, the patch shape it was trained on; empty, the whole input at once.
    public var window: [Int]?
    /// The detector's precision: nil, what it was trained with; else bf16 or not.
    public var bf16: Bool?
    public var locationPooling: Detector.LocationPooling = .lumen
    /// Where the 14 probabilities come from; nil: the candidates when the weights carry a location prior.
    public var readout: ReadoutChoice?
    /// The strongest candidates read per series.
    public var candidates = CandidateReadout.defaultCount
    /// Which views of each candidate's cube the second stage reads; nil: the cube and its mirror (a
    /// run.json from before the option has none).
    public var candidateFlips: CandidateClassifier.TestTimeFlips?
    /// How an ensemble of second stages makes the 14 probabilities; nil: the mean of the members' scores
    /// per candidate (`candidates`), as a run.json from before the option was predicted (one read back
    /// without it gives nil).
    public var candidateEnsemble: Predictor.CandidateStage.Combination? = .series

    public enum ReadoutChoice: String, Codable, Sendable, CaseIterable { case candidates, pooled }

    public init(weights: [String] = [], candidateClassifiers: [String] = []) {
        self.weights = weights
        self.candidateClassifiers = candidateClassifiers
    }

    /// Names neither weights nor a second stage: nothing to predict with.
    public var namesNoFiles: Bool { weights.isEmpty && candidateClassifiers.isEmpty }
    /// A second stage with no detector weights beside it.
    public var standsAlone: Bool { weights.isEmpty }
    public var scoring: CandidateScoring { candidateScoring ?? (standsAlone ? .classifier : .geometricMean) }

    /// The predictor these files and options make. Errors name what is wrong, as `willis predict`'s
    /// options call it.
    public func predictor(device: Device) throws -> Predictor {
        guard candidates >= 1 else { throw PredictorSetupError("--candidates must be at least 1") }
        let predictor: Predictor
        if standsAlone {
            guard !namesNoFiles else { throw PredictorSetupError("give --weights, or a --candidate-classifier trained with no detector") }
            guard inputShape == nil, mode == nil, window == nil, bf16 == nil, readout == nil else {
                throw PredictorSetupError("--input-shape, --preprocessing, --window, --precision and --readout set up detector weights; a candidate classifier with no detector carries its own preparation")
            }
            predictor = try Predictor(candidateClassifiers: candidateClassifiers, scoring: scoring, calibrated: calibrated, device: device)
        } else {
            var override: Preparation?
            if inputShape != nil || mode != nil {
                // The first file's own preparation, changed only where asked.
                var p = (try? SafeTensorsFile(path: weights[0]).metadata[Preparation.metadataKey]).flatMap { $0 }
                    .flatMap { try? Preparation.from(json: $0) } ?? Preparation()
                if let inputShape { p.shape = inputShape }
                if let mode { p.mode = mode }
                override = p
            }
            predictor = try Predictor(weights: weights, preparation: override, device: device)
            if let window { predictor.window = window.isEmpty ? nil : window }
            if let bf16 { predictor.autocast = bf16 ? .bfloat16 : nil }
            predictor.locationPooling = locationPooling
            switch readout {
            case nil: break
            case .pooled: predictor.readout = .pooled
            case .candidates:
                guard let prior = predictor.locationPrior else {
                    throw PredictorSetupError("--readout candidates needs a location prior in the weights: add one with willis location-prior --data TRAINING-DATA --weights \(weights[0])")
                }
                predictor.readout = .candidates(CandidateReadout(prior: prior))
            }
            if !candidateClassifiers.isEmpty {
                guard case .candidates = predictor.readout else {
                    throw PredictorSetupError("--candidate-classifier needs --readout candidates (and weights with a location prior)")
                }
                try predictor.useCandidateClassifiers(at: candidateClassifiers, scoring: scoring, calibrated: calibrated)
            }
        }
        if let candidateFlips {
            guard predictor.candidateStage != nil else { throw PredictorSetupError("--candidate-flips sets how a --candidate-classifier reads its cubes: give one") }
            predictor.candidateStage?.flips = candidateFlips
        }
        predictor.candidateStage?.combination = candidateEnsemble ?? .candidates
        if let problem = predictor.candidateStage?.combinationError { throw PredictorSetupError(problem) }
        if case var .candidates(r) = predictor.readout {
            r.count = candidates
            predictor.readout = .candidates(r)
        }
        return predictor
    }
}

public struct PredictorSetupError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
