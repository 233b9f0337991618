import Dataset
import Foundation
import Models
import Preprocessing

/// A TOML experiment file for `willis train` (the subset experiments need: `[tables]`, `key = value`
/// with strings, integers, floats, booleans and arrays of them, `#` comments).
///
///     epochs = 20
///     learning_rate = 1e-3
///     input_shape = [64, 128, 128]
///     loss = "reference"          # or "logits"
///     [preprocessing]
///     mode = "improved"           # or "reference"
///     spacing = 1.2               # mm, improved mode
///     [augmentation]
///     flip = true
///     rotation_degrees = 10
public enum ExperimentFile {
    public enum Value: Equatable, Sendable {
        case string(String), number(Double), bool(Bool), array([Value])
    }

    public struct Error: Swift.Error, CustomStringConvertible, Equatable {
        public var line: Int
        public var reason: String
        public var description: String { "line \(line): \(reason)" }
    }

    /// "table.key" → value ("key" for the top level).
    public static func parse(_ text: String) throws -> [String: (value: Value, line: Int)] {
        var result: [String: (Value, Int)] = [:]
        var table = ""
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let lineNumber = n + 1
            let line = stripComment(String(raw)).trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            if line.hasPrefix("[") {
                guard line.hasSuffix("]"), line.count > 2 else { throw Error(line: lineNumber, reason: "bad table header '\(line)'") }
                table = String(line.dropFirst().dropLast()).trimmingCharacters(in: .whitespaces)
                continue
            }
            guard let eq = line.firstIndex(of: "=") else { throw Error(line: lineNumber, reason: "expected key = value") }
            let key = line[..<eq].trimmingCharacters(in: .whitespaces)
            guard !key.isEmpty, key.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }) else {
                throw Error(line: lineNumber, reason: "bad key '\(key)'")
            }
            var rest = Substring(line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces))
            let value = try parseValue(&rest, lineNumber)
            guard rest.trimmingCharacters(in: .whitespaces).isEmpty else { throw Error(line: lineNumber, reason: "unexpected '\(rest)'") }
            let full = table.isEmpty ? key : "\(table).\(key)"
            guard result[full] == nil else { throw Error(line: lineNumber, reason: "'\(full)' set twice") }
            result[full] = (value, lineNumber)
        }
        return result
    }

    static func stripComment(_ line: String) -> String {
        var inString: Character?
        for (i, c) in line.enumerated() {
            if let q = inString { if c == q { inString = nil } } else if c == "\"" || c == "'" { inString = c } else if c == "#" {
                return String(line.prefix(i))
            }
        }
        return line
    }

    static func parseValue(_ s: inout Substring, _ line: Int) throws -> Value {
        s = s.drop { $0 == " " }
        guard let first = s.first else { throw Error(line: line, reason: "missing value") }
        if first == "\"" || first == "'" {
            s = s.dropFirst()
            guard let end = s.firstIndex(of: first) else { throw Error(line: line, reason: "unterminated string") }
            let text = String(s[..<end])
            s = s[s.index(after: end)...]
            return .string(text)
        }
        if first == "[" {
            s = s.dropFirst()
            var items: [Value] = []
            while true {
                s = s.drop { $0 == " " }
                if s.first == "]" { s = s.dropFirst(); return .array(items) }
                items.append(try parseValue(&s, line))
                s = s.drop { $0 == " " }
                if s.first == "," { s = s.dropFirst(); continue }
                if s.first == "]" { s = s.dropFirst(); return .array(items) }
                throw Error(line: line, reason: "expected ',' or ']' in array")
            }
        }
        let token = s.prefix { $0 != "," && $0 != "]" && $0 != " " }
        s = s.dropFirst(token.count)
        switch token {
        case "true": return .bool(true)
        case "false": return .bool(false)
        default:
            guard let v = Double(token.replacingOccurrences(of: "_", with: "")) else {
                throw Error(line: line, reason: "'\(token)' is not a string, number, boolean or array")
            }
            return .number(v)
        }
    }

    /// Applies a parsed file to `config`; unknown keys and wrong types are errors naming the line. The
    /// `[candidates]` table belongs to `willis train-candidates` (`applyCandidates`); it is checked here
    /// too, so one file can hold both stages' recipe and a mistake in either shows at once.
    /// `series_weights` names a table of per-series draw weights (`SeriesWeights`), read relative to
    /// `folder` (the experiment file's) when it is not absolute; it turns on `weighted` sampling.
    public static func apply(_ entries: [String: (value: Value, line: Int)], to config: inout TrainingConfig, folder: String? = nil) throws {
        var secondStage = CandidateClassifierTraining(dataRoot: "", detectorWeights: "", output: "")
        try applyCandidates(entries, to: &secondStage)
        for (key, (value, line)) in entries.sorted(by: { $0.value.line < $1.value.line }) where !key.hasPrefix(candidatesTable) {
            func number() throws -> Double {
                guard case let .number(v) = value else { throw Error(line: line, reason: "'\(key)' needs a number") }
                return v
            }
            func integer() throws -> Int {
                let v = try number()
                guard v == v.rounded(), abs(v) < 1e9 else { throw Error(line: line, reason: "'\(key)' needs an integer") }
                return Int(v)
            }
            func bool() throws -> Bool {
                guard case let .bool(v) = value else { throw Error(line: line, reason: "'\(key)' needs true or false") }
                return v
            }
            switch key {
            case "epochs": config.epochs = try integer()
            case "validate_every":
                let n = try integer()
                guard n >= 1 else { throw Error(line: line, reason: "'validate_every' is a number of epochs, 1 or more") }
                config.validateEvery = n
            case "batch_size": config.batchSize = try integer()
            case "learning_rate": config.learningRate = try number()
            case "plateau_patience": config.plateauPatience = try integer()
            case "plateau_factor": config.plateauFactor = try number()
            case "base_filters": config.baseFilters = try integer()
            case "seed": config.seed = UInt64(max(0, try integer()))
            case "channels_last": config.channelsLast = try bool()
            case "sampling":
                guard case let .string(v) = value, let s = SeriesSampling(rawValue: v) else {
                    throw Error(line: line, reason: "'sampling' is \"uniform\", \"balanced\" or \"weighted\"")
                }
                config.sampling = s
            case "series_weights":
                guard case let .string(v) = value, !v.isEmpty else { throw Error(line: line, reason: "'series_weights' needs a file name") }
                var path = v
                if let folder, !v.hasPrefix("/") { path = "\(folder)/\(v)" }
                do { config.seriesWeights = try SeriesWeights.read(path) } catch let e as DatasetError {
                    throw Error(line: line, reason: "'series_weights': \(e)")
                }
            case "model":
                guard case let .string(v) = value, let m = TrainingConfig.Model(rawValue: v) else {
                    throw Error(line: line, reason: "'model' is \"reference\" or \"detector\"")
                }
                config.model = m
            case "detector.base_filters": config.detector.baseFilters = try integer()
            case "detector.heatmap_sigma_mm": config.detector.heatmapSigmaMM = try number()
            case "detector.heatmap_positive_weight": config.detector.heatmapPositiveWeight = try number()
            case "detector.heatmap_loss":
                guard case let .string(v) = value, let loss = TrainingConfig.DetectorSettings.HeatmapLoss(rawValue: v) else {
                    throw Error(line: line, reason: "'heatmap_loss' is \"focal\" or \"bce\"")
                }
                config.detector.heatmapLoss = loss
            case "detector.vessel_weight": config.detector.vesselWeight = try number()
            case "detector.vessel_dice_weight": config.detector.vesselDiceWeight = try number()
            case "detector.precision": config.detector.precision = try precision(value, key: key, line: line)
            case "detector.classification_weight": config.detector.classificationWeight = try number()
            case "detector.ema_decay": config.detector.emaDecay = try number()
            case "detector.weight_decay": config.detector.weightDecay = try number()
            case "detector.modality_input": config.detector.modalityInput = try bool()
            case "detector.coordinate_input": config.detector.coordinateInput = try bool()
            case "detector.vessel_territory_mm":
                let v = try number()
                guard v >= 0, v <= 30 else { throw Error(line: line, reason: "'detector.vessel_territory_mm' is between 0 and 30") }
                config.detector.vesselTerritoryMM = v
            case "detector.positive_fraction":
                let v = try number()
                guard v >= 0, v <= 1 else { throw Error(line: line, reason: "'detector.positive_fraction' is between 0 and 1") }
                config.detector.positiveFraction = v
            case "detector.patch_shape":
                guard case let .array(items) = value, items.count == 3 else { throw Error(line: line, reason: "'detector.patch_shape' needs [D, H, W]") }
                config.detector.patchShape = try items.map { item -> Int in
                    guard case let .number(v) = item, v > 0, v == v.rounded(), Int(v) % 8 == 0 else {
                        throw Error(line: line, reason: "'detector.patch_shape' sizes must be positive multiples of 8")
                    }
                    return Int(v)
                }
            case "input_shape":
                guard case let .array(items) = value, items.count == 3 else { throw Error(line: line, reason: "'input_shape' needs [D, H, W]") }
                config.inputShape = try items.map { item -> Int in
                    guard case let .number(v) = item, v > 0, v == v.rounded(), Int(v) % 16 == 0 else {
                        throw Error(line: line, reason: "'input_shape' sizes must be positive multiples of 16")
                    }
                    return Int(v)
                }
            case "loss":
                guard case let .string(s) = value, let loss = ["reference": TrainingConfig.Loss.bceOnProbabilities, "logits": .bceWithLogits][s] else {
                    throw Error(line: line, reason: "'loss' is \"reference\" or \"logits\"")
                }
                config.loss = loss
            case "preprocessing.mode":
                guard case let .string(s) = value, let mode = Preparation.Mode(rawValue: s) else {
                    throw Error(line: line, reason: "'preprocessing.mode' is \"reference\" or \"improved\"")
                }
                config.preparation.mode = mode
            case "preprocessing.spacing": config.preparation.spacing = try number()
            case "preprocessing.subdivision":
                let v = try number()
                guard v == v.rounded(), (1...4).contains(Int(v)) else { throw Error(line: line, reason: "'preprocessing.subdivision' is 1, 2, 3 or 4") }
                config.preparation.subdivision = Int(v)
            case "preprocessing.mr_intensity":
                guard case let .string(v) = value, let rule = ImprovedPlan.MRIntensity(rawValue: v) else {
                    throw Error(line: line, reason: "'preprocessing.mr_intensity' is \"foregroundScale\" or \"zScore\"")
                }
                config.preparation.mrIntensity = rule
            case "preprocessing.centre_offset":
                guard case let .array(items) = value, items.count == 3 else { throw Error(line: line, reason: "'centre_offset' needs [x, y, z] in mm") }
                config.preparation.centreOffset = try items.map { item -> Double in
                    guard case let .number(v) = item else { throw Error(line: line, reason: "'centre_offset' needs numbers") }
                    return v
                }
            case "augmentation.flip": config.augmentation.flipLeftRight = try bool()
            case "augmentation.rotation_degrees": config.augmentation.rotationDegrees = try number()
            case "augmentation.scale": config.augmentation.scale = try number()
            case "augmentation.intensity_shift": config.augmentation.intensityShift = Float(try number())
            case "augmentation.intensity_gain": config.augmentation.intensityGain = Float(try number())
            case "augmentation.noise": config.augmentation.noise = Float(try number())
            default: throw Error(line: line, reason: "unknown setting '\(key)'")
            }
        }
        if let weights = entries["series_weights"] {
            if let sampling = entries["sampling"], config.sampling != .weighted {
                throw Error(line: sampling.line, reason: "'sampling' is \"\(config.sampling.rawValue)\" but 'series_weights' (line \(weights.line)) needs \"weighted\"")
            }
            config.sampling = .weighted
        }
    }

    static let candidatesTable = "candidates."

    /// A `precision` setting: the detector's table's (fp32, bf16) or the second stage's (also fastest).
    static func precision<P: RawRepresentable & CaseIterable>(_ value: Value, key: String, line: Int) throws -> P where P.RawValue == String {
        guard case let .string(v) = value, let precision = P(rawValue: v) else {
            throw Error(line: line, reason: "'\(key)' is one of " + P.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))
        }
        return precision
    }

    /// Applies the file's `[candidates]` table (the detector's second stage) to `training`; the other
    /// tables are `willis train`'s and left alone.
    ///
    ///     [candidates]
    ///     steps = 8000
    ///     batch_size = 32
    ///     learning_rate = 1e-3
    ///     base_filters = 16
    ///     patch_size = 24        # samples of the prepared image, a multiple of 4
    ///     depth = 1              # convolutions per sampling at 12³ and 6³ (1 to 4; the further ones residual)
    ///     peaks = 20             # per series
    ///     peak_threshold = 0.01
    ///     match_mm = 4.0
    ///     ignore_mm = 0          # false candidates from match_mm to this far from a point are not trained on
    ///     jitter = 2             # samples
    ///     hard_negatives = 0.0   # share of each batch's negatives drawn in proportion to their heatmap value
    ///     hard_negative_power = 1.0  # ... in proportion to their heatmap value to this power
    ///     hard_negative_rank = 0 # above 0: ... uniformly from each series' this many strongest false peaks
    ///     permute_axes = false   # training cubes also take their axes in a random order
    ///     dot_candidates = 0     # above 0: this many dot-filter candidates per series beside the peaks
    ///     dot_depth_mm = 16      # ... inside the head less a shell this deep
    ///     dot_peak_search = "acrossScales"  # ... or "eachScale": each scale's maxima, merged strongest first
    ///     align_contrast = false # negate the cubes of dark-vessel series (T2), so aneurysms are bright in all
    ///     context_scale = 0      # above 0 (2 to 4): a second cube this many times wider, each sample a mean
    ///     location_head = false  # also learn to name the artery under each candidate (vessel labels, localizers)
    ///     location_radius_mm = 4.8  # ... a candidate this near a labelled vessel voxel takes its label
    ///     location_weight = 1.0  # ... the naming loss's weight beside the aneurysm loss
    ///     precision = "fp32"     # or "bf16": the steps under bf16 autocast where native (else fp32, warned);
    ///                            # or "fastest": whichever of the two takes the shorter step here, timed first
    ///     average_decay = 0.999  # write the steps' weights' moving average with this decay (and the last step's beside it); none by default
    ///     seed = 0
    public static func applyCandidates(_ entries: [String: (value: Value, line: Int)], to training: inout CandidateClassifierTraining) throws {
        var dotDepthMM: Double?
        var dotPeakSearch: DotFilter.PeakSearch?
        for (key, (value, line)) in entries.sorted(by: { $0.value.line < $1.value.line }) where key.hasPrefix(candidatesTable) {
            let name = String(key.dropFirst(candidatesTable.count))
            func number(_ allowed: ClosedRange<Double>) throws -> Double {
                guard case let .number(v) = value, allowed.contains(v) else {
                    throw Error(line: line, reason: "'\(key)' needs a number from \(allowed.lowerBound) to \(allowed.upperBound)")
                }
                return v
            }
            func integer(_ allowed: ClosedRange<Int>) throws -> Int {
                guard case let .number(v) = value, v == v.rounded(), abs(v) < 1e9, allowed.contains(Int(v)) else {
                    throw Error(line: line, reason: "'\(key)' needs an integer from \(allowed.lowerBound) to \(allowed.upperBound)")
                }
                return Int(v)
            }
            switch name {
            case "steps": training.steps = try integer(1...10_000_000)
            case "batch_size": training.batchSize = try integer(2...4096)
            case "learning_rate": training.learningRate = try number(1e-9...10)
            case "base_filters": training.baseFilters = try integer(1...256)
            case "patch_size": training.patchSize = try integer(8...128)
            case "depth": training.depth = try integer(1...4)
            case "peaks": training.peaksPerSeries = try integer(1...1000)
            case "peak_threshold": training.peakThreshold = Float(try number(0...1))
            case "match_mm": training.matchMM = try number(1e-3...100)
            case "ignore_mm": training.ignoreMM = try number(0...100)
            case "jitter": training.jitter = try integer(0...32)
            case "hard_negatives": training.hardNegativeShare = try number(0...1)
            case "hard_negative_power": training.hardNegativePower = try number(0...16)
            case "hard_negative_rank": training.hardNegativeRank = try integer(0...1000)
            case "permute_axes":
                guard case let .bool(v) = value else { throw Error(line: line, reason: "'\(key)' needs true or false") }
                training.permuteAxes = v
            case "dot_candidates":
                let count = try integer(0...1000)
                training.dotFilter = count == 0 ? nil : DotFilterCandidates(count: count, depthMM: training.dotFilter?.depthMM ?? 16,
                                                                            peakSearch: training.dotFilter?.peakSearch)
            case "dot_depth_mm": dotDepthMM = try number(0...200)
            case "dot_peak_search":
                let names = DotFilter.PeakSearch.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: " or ")
                guard case let .string(v) = value, let search = DotFilter.PeakSearch(rawValue: v) else {
                    throw Error(line: line, reason: "'\(key)' needs \(names)")
                }
                dotPeakSearch = search
            case "align_contrast":
                guard case let .bool(v) = value else { throw Error(line: line, reason: "'\(key)' needs true or false") }
                training.alignContrast = v
            case "context_scale":
                let scale = try integer(0...4)
                guard scale != 1 else { throw Error(line: line, reason: "'\(key)' needs 0 (no context) or 2 to 4") }
                training.contextScale = scale == 0 ? nil : scale
            case "location_head":
                guard case let .bool(v) = value else { throw Error(line: line, reason: "'\(key)' needs true or false") }
                training.locationHead = v
            case "location_radius_mm": training.locationRadiusMM = try number(0...50)
            case "location_weight": training.locationWeight = try number(1e-6...100)
            case "precision": training.precision = try precision(value, key: key, line: line)
            case "average_decay":
                let d = try number(0...1)
                guard d < 1 else { throw Error(line: line, reason: "'\(key)' needs a decay below 1 (1 would keep the first step's weights)") }
                training.averageDecay = d
            case "seed": training.seed = UInt64(try integer(0...Int(Int32.max)))
            default: throw Error(line: line, reason: "unknown setting '\(key)'")
            }
        }
        if let dotDepthMM { training.dotFilter?.depthMM = dotDepthMM }
        if let dotPeakSearch { training.dotFilter?.peakSearch = dotPeakSearch }
        // A dot-filter candidate beside a heatmap peak is the place the peak already labels.
        training.dotFilter?.separationMM = training.matchMM
        do {
            try CandidateClassifier.checkSizes(baseFilters: training.baseFilters, patchSize: training.patchSize, contextScale: training.contextScale,
                                               depth: training.depth)
        } catch {
            let line = entries.filter { $0.key.hasPrefix(candidatesTable) }.map(\.value.line).min() ?? 0
            throw Error(line: line, reason: "[candidates]: \(error)")
        }
    }
}
