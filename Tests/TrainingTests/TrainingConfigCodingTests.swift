import Foundation
import Preprocessing
import TestSupport
import Testing
import Torch
import Training

@Suite(.serialized) struct TrainingConfigCodingTests {
    /// A config with every stored setting away from its default.
    func changed() -> TrainingConfig {
        var c = TrainingConfig()
        c.model = .detector
        c.epochs = 7
        c.batchSize = 3
        c.learningRate = 2e-4
        c.plateauPatience = 5
        c.plateauFactor = 0.25
        c.baseFilters = 8
        c.preparation = Preparation(mode: .improved, shape: [40, 48, 48])
        c.loss = .bceWithLogits
        c.augmentation.flipLeftRight = true
        c.augmentation.rotationDegrees = 9
        c.augmentation.scale = 0.1
        c.augmentation.intensityShift = 0.02
        c.augmentation.intensityGain = 0.1
        c.augmentation.noise = 0.01
        c.seed = 11
        c.sampling = .weighted
        c.seriesWeights = ["1.2.3": 2.5, "1.2.4": 0]
        c.channelsLast = true
        var d = TrainingConfig.DetectorSettings()
        d.baseFilters = 24
        d.heatmapSigmaMM = 1.5
        d.heatmapLoss = .bce
        d.heatmapPositiveWeight = 10
        d.vesselWeight = 0.25
        d.vesselDiceWeight = 0
        d.vesselTerritoryMM = 4
        d.coordinateInput = true
        d.classificationWeight = 0
        d.emaDecay = 0.9
        d.weightDecay = 0.05
        d.modalityInput = true
        d.patchShape = [32, 32, 32]
        d.positiveFraction = 0.7
        d.precision = .bf16
        c.detector = d
        return c
    }

    /// Every setting is read back as written, and the JSON names them all: a setting the decoder forgot
    /// would come back as its default.
    @Test func everySettingRoundTrips() throws {
        let config = changed()
        #expect(config != TrainingConfig())
        let decoded = try JSONDecoder().decode(TrainingConfig.self, from: JSONEncoder().encode(config))
        #expect(decoded == config)
        #expect(decoded.detector == config.detector && decoded.augmentation == config.augmentation)
    }

    /// JSON without the settings added later (as an older checkpoint has it) reads with their defaults.
    @Test func missingSettingsTakeTheirDefaults() throws {
        var json = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(changed())) as? [String: Any])
        json["sampling"] = nil
        json["seriesWeights"] = nil
        json["channelsLast"] = nil
        var detector = try #require(json["detector"] as? [String: Any])
        detector["positiveFraction"] = nil
        detector["precision"] = nil
        json["detector"] = detector
        var augmentation = try #require(json["augmentation"] as? [String: Any])
        augmentation["noise"] = nil
        json["augmentation"] = augmentation
        let decoded = try JSONDecoder().decode(TrainingConfig.self, from: JSONSerialization.data(withJSONObject: json))
        var expected = changed()
        expected.sampling = .uniform
        expected.seriesWeights = [:]
        expected.channelsLast = false
        expected.detector.positiveFraction = 0.5
        expected.detector.precision = nil
        expected.augmentation.noise = 0
        #expect(decoded == expected)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(TrainingConfig.self, from: Data("{\"epochs\": \"many\"}".utf8)) }
    }

    /// A checkpoint written before a setting existed (its stored settings lack it) still resumes.
    @Test func anOlderCheckpointResumes() throws {
        _ = try engine()
        var config = TrainingConfig()
        config.baseFilters = 4
        config.inputShape = [16, 32, 32]
        let trainer = try Trainer(config: config)
        let batch = (0..<2).map { i in
            Sample(id: "s\(i)", input: (0..<(16 * 32 * 32)).map { Float(($0 * (i + 2)) % 13) / 13 }, labels: (0..<14).map { $0 == 4 || $0 == 13 })
        }
        _ = try trainer.trainEpoch(batch)
        try trainer.endEpoch(validationLoss: 1)
        let folder = try temporaryDirectory()
        try trainer.saveCheckpoint(to: "\(folder)/new.safetensors")
        // The same file with the state's settings stripped of `sampling`, as a checkpoint from before it.
        let file = try SafeTensorsFile(path: "\(folder)/new.safetensors")
        var metadata = file.metadata
        let key = "willis_training_state"
        let text = try #require(metadata[key])
        var state = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        var stored = try #require(state["config"] as? [String: Any])
        #expect(stored["sampling"] != nil)
        stored["sampling"] = nil
        state["config"] = stored
        metadata[key] = String(decoding: try JSONSerialization.data(withJSONObject: state), as: UTF8.self)
        try SafeTensors.write(try file.names.map { ($0, try file.tensor($0)) }, metadata: metadata, to: "\(folder)/old.safetensors")
        let resumed = try Trainer(config: config)
        try resumed.loadCheckpoint(from: "\(folder)/old.safetensors")
        #expect(resumed.epoch == 1)
    }
}
