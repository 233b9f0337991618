import Foundation
import Models
import TestSupport
import Testing
import Training

@Suite struct ExperimentFileTests {
    @Test func readsAnExperiment() throws {
        let text = """
        # the reference recipe with flips
        epochs = 30
        learning_rate = 3e-4   # lower
        input_shape = [32, 64, 64]
        loss = "logits"
        seed = 7
        sampling = "balanced"

        [augmentation]
        flip = true
        rotation_degrees = 12.5
        noise = 0.01
        """
        var config = TrainingConfig()
        try ExperimentFile.apply(try ExperimentFile.parse(text), to: &config)
        #expect(config.epochs == 30 && config.learningRate == 3e-4 && config.inputShape == [32, 64, 64])
        #expect(config.loss == .bceWithLogits && config.seed == 7)
        #expect(config.augmentation.flipLeftRight && config.augmentation.rotationDegrees == 12.5 && config.augmentation.noise == 0.01)
        #expect(config.batchSize == 2, "unset keys keep the reference defaults")
        #expect(config.sampling == .balanced && TrainingConfig().sampling == .uniform)
        #expect { try ExperimentFile.apply(try ExperimentFile.parse("epochs = 3\nsampling = \"stratified\""), to: &config) }
            throws: { ($0 as? ExperimentFile.Error)?.line == 2 }
    }

    /// `series_weights` reads its table relative to the experiment file's folder and turns on weighted
    /// sampling; with another sampling named, or a table that cannot be read, the file is refused at the line.
    @Test func seriesWeightsComeFromATableBesideTheFile() throws {
        let folder = try temporaryDirectory()
        try "SeriesInstanceUID,weight\n1.2.3,4\n1.2.4,0.5\n".write(toFile: "\(folder)/w.csv", atomically: false, encoding: .utf8)
        var config = TrainingConfig()
        try ExperimentFile.apply(try ExperimentFile.parse("epochs = 2\nseries_weights = \"w.csv\""), to: &config, folder: folder)
        #expect(config.sampling == .weighted && config.seriesWeights == ["1.2.3": 4, "1.2.4": 0.5])
        config = TrainingConfig()
        try ExperimentFile.apply(try ExperimentFile.parse("sampling = \"weighted\"\nseries_weights = \"\(folder)/w.csv\""), to: &config)
        #expect(config.sampling == .weighted && config.seriesWeights.count == 2)
        #expect { try ExperimentFile.apply(try ExperimentFile.parse("sampling = \"balanced\"\nseries_weights = \"w.csv\""), to: &config, folder: folder) }
            throws: { ($0 as? ExperimentFile.Error)?.line == 1 }
        #expect { try ExperimentFile.apply(try ExperimentFile.parse("epochs = 2\nseries_weights = \"missing.csv\""), to: &config, folder: folder) }
            throws: { ($0 as? ExperimentFile.Error).map { $0.line == 2 && $0.reason.contains("missing.csv") } ?? false }
    }

    /// Every committed experiment file reads, and the improved one sets the improved preparation.
    @Test func committedExperimentsRead() throws {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../experiments").standardized.path
        let files = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".toml") }.sorted()
        #expect(files.contains("reference.toml") && files.contains("improved.toml"))
        for name in files {
            var config = TrainingConfig()
            try ExperimentFile.apply(try ExperimentFile.parse(String(contentsOfFile: "\(folder)/\(name)", encoding: .utf8)), to: &config)
            try config.preparation.validate()
            if name == "reference.toml" { #expect(config == TrainingConfig(), "reference.toml equals the defaults") }
            if name == "detector.toml" {
                #expect(config.model == .detector && config.preparation.mode == .improved && config.detector.baseFilters == 16)
                #expect(config.detector.patchShape == [48, 64, 64] && config.preparation.mrIntensity == .foregroundScale)
            }
            if name == "detector-subvoxel.toml" {
                #expect(config.model == .detector && config.preparation.subdivision == 2 && config.preparation.spacing == 1.6)
            }
            if name == "improved.toml" {
                #expect(config.preparation.mode == .improved && config.preparation.spacing == 1.2 && config.inputShape == [96, 128, 128])
            }
        }
        var bad = TrainingConfig()
        #expect(throws: ExperimentFile.Error.self) {
            try ExperimentFile.apply(try ExperimentFile.parse("[preprocessing]\nmode = \"fancy\""), to: &bad)
        }
        #expect(throws: ExperimentFile.Error.self) {
            try ExperimentFile.apply(try ExperimentFile.parse("[preprocessing]\nmr_intensity = \"zscore\""), to: &bad)
        }
        try ExperimentFile.apply(try ExperimentFile.parse("[preprocessing]\nmr_intensity = \"zScore\"\n[detector]\nvessel_dice_weight = 0"), to: &bad)
        #expect(bad.preparation.mrIntensity == .zScore && bad.detector.vesselDiceWeight == 0)
        try ExperimentFile.apply(try ExperimentFile.parse("[detector]\nvessel_territory_mm = 5\ncoordinate_input = true"), to: &bad)
        #expect(bad.detector.vesselTerritoryMM == 5 && bad.detector.coordinateInput)
        #expect(throws: ExperimentFile.Error.self) {
            try ExperimentFile.apply(try ExperimentFile.parse("[detector]\nvessel_territory_mm = -1"), to: &bad)
        }
        for wrong in ["0", "1.5", "5"] {
            #expect(throws: ExperimentFile.Error.self) {
                try ExperimentFile.apply(try ExperimentFile.parse("[preprocessing]\nsubdivision = \(wrong)"), to: &bad)
            }
        }
    }

    /// The `[candidates]` table sets `willis train-candidates`' recipe; `willis train` leaves it alone but
    /// refuses a mistake in it; the committed sub-voxel recipe writes out the defaults chosen in stop 16.
    @Test func candidatesTableSetsTheSecondStage() throws {
        let text = """
        epochs = 3
        [candidates]
        steps = 500
        batch_size = 16
        learning_rate = 2e-4
        base_filters = 8
        patch_size = 32
        depth = 3
        peaks = 12
        peak_threshold = 0.05
        match_mm = 3.5
        ignore_mm = 7
        jitter = 3
        hard_negatives = 0.25
        hard_negative_power = 2
        hard_negative_rank = 3
        permute_axes = true
        dot_depth_mm = 10
        dot_peak_search = "eachScale"
        dot_candidates = 12
        align_contrast = true
        context_scale = 3
        location_head = true
        location_radius_mm = 3.2
        location_weight = 0.5
        precision = "bf16"
        average_decay = 0.998
        seed = 9
        """
        var training = CandidateClassifierTraining(dataRoot: "d", detectorWeights: "w", output: "o")
        try ExperimentFile.applyCandidates(try ExperimentFile.parse(text), to: &training)
        #expect(training.steps == 500 && training.batchSize == 16 && training.learningRate == 2e-4 && training.baseFilters == 8)
        #expect(training.patchSize == 32 && training.peaksPerSeries == 12 && training.peakThreshold == 0.05)
        #expect(training.matchMM == 3.5 && training.jitter == 3 && training.seed == 9 && training.hardNegativeShare == 0.25)
        #expect(training.permuteAxes && training.hardNegativePower == 2 && training.hardNegativeRank == 3 && training.alignContrast)
        #expect(training.contextScale == 3 && training.ignoreMM == 7 && training.depth == 3)
        #expect(training.locationHead && training.locationRadiusMM == 3.2 && training.locationWeight == 0.5 && training.precision == .bf16)
        #expect(training.averageDecay == 0.998)
        #expect(training.dotFilter == DotFilterCandidates(count: 12, depthMM: 10, separationMM: 3.5, peakSearch: .eachScale), "apart by the match distance")
        var config = TrainingConfig()
        try ExperimentFile.apply(try ExperimentFile.parse(text), to: &config)
        #expect(config.epochs == 3)

        for (wrong, line) in [("[candidates]\npeak = 5", 2), ("epochs = 2\n[candidates]\nsteps = 0", 3),
                              ("[candidates]\npatch_size = 30", 2), ("[candidates]\npeak_threshold = \"high\"", 2),
                              ("[candidates]\nhard_negatives = 1.5", 2), ("[candidates]\npermute_axes = 1", 2),
                              ("[candidates]\nhard_negative_rank = 1.5", 2), ("[candidates]\ndot_candidates = -1", 2),
                              ("[candidates]\ndot_depth_mm = -4", 2), ("[candidates]\nalign_contrast = \"yes\"", 2),
                              ("[candidates]\ncontext_scale = 1", 2), ("[candidates]\ncontext_scale = 5", 2),
                              ("[candidates]\nignore_mm = -1", 2), ("[candidates]\nlocation_head = 1", 2),
                              ("[candidates]\nlocation_weight = 0", 2), ("[candidates]\nlocation_radius_mm = -1", 2),
                              ("[candidates]\nprecision = \"fp16\"", 2), ("[candidates]\naverage_decay = 1", 2),
                              ("[candidates]\naverage_decay = -0.5", 2), ("[candidates]\ndot_peak_search = \"each\"", 2),
                              ("[candidates]\ndot_peak_search = 1", 2), ("[candidates]\ndepth = 0", 2),
                              ("[candidates]\ndepth = 5", 2), ("[candidates]\ndepth = 1.5", 2)] {
            var t = CandidateClassifierTraining(dataRoot: "d", detectorWeights: "w", output: "o")
            #expect(throws: ExperimentFile.Error.self) { try ExperimentFile.applyCandidates(try ExperimentFile.parse(wrong), to: &t) }
            do {
                var c = TrainingConfig()
                try ExperimentFile.apply(try ExperimentFile.parse(wrong), to: &c)
                Issue.record("willis train accepted \(wrong)")
            } catch let e as ExperimentFile.Error {
                #expect(e.line == line, "\(wrong): \(e)")
            }
        }
        // "fastest" is timed by the second stage's trainer; the detector's table has no such precision.
        let fastestText = "[candidates]\nprecision = \"fastest\""
        var fastest = CandidateClassifierTraining(dataRoot: "d", detectorWeights: "w", output: "o")
        try ExperimentFile.applyCandidates(try ExperimentFile.parse(fastestText), to: &fastest)
        var withFastest = TrainingConfig()
        try ExperimentFile.apply(try ExperimentFile.parse(fastestText), to: &withFastest)
        #expect(fastest.precision == .fastest && withFastest.detector.precision == nil)
        do {
            var c = TrainingConfig()
            try ExperimentFile.apply(try ExperimentFile.parse("epochs = 1\n[detector]\nprecision = \"fastest\""), to: &c)
            Issue.record("the detector's table accepted precision = fastest")
        } catch let e as ExperimentFile.Error {
            #expect(e.line == 3 && e.reason == "'detector.precision' is one of \"fp32\", \"bf16\"", "\(e)")
        }

        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../experiments").standardized.path
        func read(_ name: String) throws -> [String: (value: ExperimentFile.Value, line: Int)] {
            try ExperimentFile.parse(String(contentsOfFile: "\(folder)/\(name)", encoding: .utf8))
        }
        var committed = CandidateClassifierTraining(dataRoot: "d", detectorWeights: "w", output: "o")
        let entries = try read("detector-subvoxel.toml")
        #expect(entries.keys.contains("candidates.steps"))
        try ExperimentFile.applyCandidates(entries, to: &committed)
        let defaults = CandidateClassifierTraining(dataRoot: "d", detectorWeights: "w", output: "o")
        #expect(committed.steps == defaults.steps && committed.batchSize == defaults.batchSize && committed.learningRate == defaults.learningRate)
        #expect(committed.baseFilters == defaults.baseFilters && committed.patchSize == defaults.patchSize && committed.jitter == defaults.jitter)
        #expect(committed.peaksPerSeries == defaults.peaksPerSeries && committed.peakThreshold == defaults.peakThreshold && committed.matchMM == defaults.matchMM)
        #expect(committed.hardNegativeShare == defaults.hardNegativeShare && committed.permuteAxes == defaults.permuteAxes
            && committed.hardNegativePower == defaults.hardNegativePower && committed.dotFilter == nil)
        #expect(committed.ignoreMM == defaults.ignoreMM && committed.contextScale == nil && !committed.alignContrast && committed.precision == nil
            && committed.averageDecay == nil)

        // The stand-alone recipe: prepared exactly as the sub-voxel detector (so their caches are one), and the
        // flags of RESULTS.md stop 45 written out, the defaults left as they are.
        let standAloneEntries = try read("candidate-classifier.toml")
        var subvoxel = TrainingConfig(), standAlone = TrainingConfig()
        try ExperimentFile.apply(entries, to: &subvoxel)
        try ExperimentFile.apply(standAloneEntries, to: &standAlone)
        #expect(standAlone.preparation == subvoxel.preparation)
        var recipe = CandidateClassifierTraining(dataRoot: "d", preparation: standAlone.preparation, output: "o")
        try ExperimentFile.applyCandidates(standAloneEntries, to: &recipe)
        #expect(recipe.dotFilter == DotFilterCandidates(count: 50, depthMM: 16, separationMM: defaults.matchMM, peakSearch: .eachScale))
        #expect(recipe.alignContrast && recipe.locationHead && recipe.precision == .fastest && recipe.averageDecay == 0.999 && recipe.steps == 48000)
        #expect(recipe.depth == 2, "stop 51: one residual convolution more at 12³ and 6³")
        #expect(recipe.batchSize == defaults.batchSize && recipe.learningRate == defaults.learningRate && recipe.patchSize == defaults.patchSize
            && recipe.matchMM == defaults.matchMM && recipe.contextScale == nil && recipe.hardNegativeShare == defaults.hardNegativeShare && recipe.seed == defaults.seed)
    }

    @Test func errorsNameTheLine() throws {
        func error(_ text: String) -> ExperimentFile.Error? {
            var c = TrainingConfig()
            do { try ExperimentFile.apply(try ExperimentFile.parse(text), to: &c); return nil } catch let e as ExperimentFile.Error { return e } catch { return nil }
        }
        #expect(error("epochs = 3\nepoch = 4")?.line == 2)
        #expect(error("epochs = 3\nepochs = 4")?.reason.contains("set twice") == true)
        #expect(error("epochs = \"many\"")?.reason.contains("needs a number") == true)
        #expect(error("epochs = 2.5")?.reason.contains("integer") == true)
        #expect(error("input_shape = [30, 64, 64]")?.reason.contains("multiples of 16") == true)
        #expect(error("loss = \"focal\"")?.line == 1)
        #expect(error("[augmentation\nflip = true")?.reason.contains("table header") == true)
        #expect(error("name = \"unterminated")?.reason.contains("unterminated") == true)
        #expect(error("just words")?.reason.contains("key = value") == true)
        #expect(error("validate_every = 0")?.reason.contains("1 or more") == true)
        var c = TrainingConfig()
        try ExperimentFile.apply(try ExperimentFile.parse("validate_every = 3"), to: &c)
        #expect(c.validateEvery == 3 && TrainingConfig().validateEvery == 1)
    }
}
