import Anatomy
import Foundation
import VolumeCore

/// How a series becomes the network input: the mode and its settings. Training stores it in the
/// weights it writes, so prediction prepares series the same way, and the cache folder is named by it,
/// so a change of settings never reuses stale inputs.
public struct Preparation: Codable, Sendable, Equatable {
    public enum Mode: String, Codable, Sendable, CaseIterable {
        /// The notebook: clip to [−1000, 1000], scale to [0, 1], anti-aliased resize of the whole volume.
        case reference
        /// Canonical orientation, fixed spacing, a crop centred on the head, CT window / MR scaled by its head.
        case improved
    }

    public var mode = Mode.reference
    /// The network input (depth, height, width).
    public var shape = [64, 128, 128]
    /// Improved mode: isotropic output spacing in mm.
    public var spacing = 1.2
    /// Improved mode: where the crop centre sits relative to the head's centroid (mm, LPS).
    public var centreOffset = [0.0, 0.0, -12.0]
    /// Improved mode: how MR intensities are normalised. Weights written before this setting existed
    /// were trained with the z-score, so that is what a stored preparation without it means.
    public var mrIntensity = ImprovedPlan.MRIntensity.foregroundScale
    /// Improved mode: the image is sampled n times finer along each axis than the grid (`spacing / n`,
    /// over the same box), so that a network computing at `spacing` still sees detail below it (see
    /// `Detector`'s `inputSubdivision`); 1 samples the grid itself. Targets, vessel labels, heatmaps and
    /// records stay on the grid.
    public var subdivision = 1

    public init(mode: Mode = .reference, shape: [Int] = [64, 128, 128]) {
        self.mode = mode
        self.shape = shape
    }

    enum CodingKeys: String, CodingKey { case mode, shape, spacing, centreOffset, mrIntensity, subdivision }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        mode = try c.decode(Mode.self, forKey: .mode)
        shape = try c.decode([Int].self, forKey: .shape)
        spacing = try c.decode(Double.self, forKey: .spacing)
        centreOffset = try c.decode([Double].self, forKey: .centreOffset)
        mrIntensity = try c.decodeIfPresent(ImprovedPlan.MRIntensity.self, forKey: .mrIntensity) ?? .zScore
        subdivision = try c.decodeIfPresent(Int.self, forKey: .subdivision) ?? 1
    }

    /// Samples per grid voxel along each axis in the prepared input: `subdivision` in improved mode,
    /// 1 in reference mode (which has no grid to subdivide).
    public var inputSubdivision: Int { mode == .improved ? subdivision : 1 }

    /// Values in one prepared input: the grid's voxels times inputSubdivision³.
    public var inputCount: Int { shape.reduce(1, *) * inputSubdivision * inputSubdivision * inputSubdivision }

    /// The prepared input's own shape: the grid's times inputSubdivision.
    public var inputShape: [Int] { shape.map { $0 * inputSubdivision } }

    /// `input` (this preparation's, `inputShape`) on the grid (`shape`): each voxel the mean of the
    /// subdivision³ samples inside it. For pictures drawn on the grid.
    public func onGrid(_ input: [Float]) -> [Float] {
        let n = inputSubdivision
        guard n > 1, input.count == inputCount else { return input }
        let (d, h, w) = (shape[0], shape[1], shape[2])
        let (fh, fw) = (h * n, w * n)
        var out = [Float](repeating: 0, count: d * h * w)
        let scale = 1 / Float(n * n * n)
        for k in 0..<(d * n) { for j in 0..<fh { for i in 0..<fw {
            out[((k / n) * h + j / n) * w + i / n] += input[(k * fh + j) * fw + i] * scale
        } } }
        return out
    }

    /// The grid as the location prior sees it (see `CropGrid`).
    public var cropGrid: CropGrid { CropGrid(shape: shape, spacing: spacing) }

    /// The improved mode's resampling plan.
    public var plan: ImprovedPlan {
        var p = ImprovedPlan()
        p.shape = shape
        p.spacing = spacing
        p.centreOffset = centreOffset
        p.mrIntensity = mrIntensity
        p.subdivision = subdivision
        return p
    }

    /// The input for `volume`; `modality` is DICOM's ("CT", "MR") or the table's ("CTA", "MRA", …).
    /// The record says where the input's voxels lie in the patient (improved mode only).
    public func prepare(_ volume: Volume, modality: String) -> (input: [Float], record: PreparationRecord?) {
        switch mode {
        case .reference:
            return (ReferencePreprocessing.apply(volume, to: (shape[0], shape[1], shape[2])), nil)
        case .improved:
            let (input, record) = ImprovedPreprocessing.prepare(volume, modality: modality, plan: plan)
            return (input, record)
        }
    }

    /// A folder name that changes whenever the output would (version bumps when the arithmetic does).
    public var cacheKey: String {
        let size = shape.map(String.init).joined(separator: "x")
        switch mode {
        case .reference: return "reference-\(size)-v1"
        case .improved:
            let offset = centreOffset.map { String(format: "%g", $0) }.joined(separator: ",")
            // v2: entries also hold the detector's targets.
            let mr = mrIntensity == .zScore ? "" : "-mr\(mrIntensity.rawValue)"
            let finer = subdivision == 1 ? "" : "-sub\(subdivision)"
            return "improved-\(size)-\(String(format: "%g", spacing))mm\(finer)-at\(offset)\(mr)-v2"
        }
    }

    /// Checks the settings a user can get wrong.
    public func validate() throws {
        guard shape.count == 3, shape.allSatisfy({ $0 > 0 && $0 % 16 == 0 }) else {
            throw PreparationError("input shape must be three positive multiples of 16 (the network halves it four times), not \(shape)")
        }
        guard spacing.isFinite, spacing > 0.05, spacing < 20 else { throw PreparationError("spacing must be in (0.05, 20) mm, not \(spacing)") }
        guard centreOffset.count == 3, centreOffset.allSatisfy(\.isFinite) else {
            throw PreparationError("centre offset must be three finite numbers (mm)")
        }
        guard (1...4).contains(subdivision) else { throw PreparationError("subdivision must be 1 to 4, not \(subdivision)") }
    }

    /// The metadata key under which training stores this in safetensors files.
    public static let metadataKey = "willis_preparation"

    public var json: String { String(decoding: (try? JSONEncoder().encode(self)) ?? Data(), as: UTF8.self) }

    public static func from(json: String) throws -> Preparation {
        do { return try JSONDecoder().decode(Preparation.self, from: Data(json.utf8)) } catch {
            throw PreparationError("unreadable preparation settings \(json.prefix(120)): \(error)")
        }
    }
}

public struct PreparationError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
