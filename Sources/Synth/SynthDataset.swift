import Anatomy
import DICOM
import Dataset
import Dispatch
import Foundation
import NIfTI
import VolumeCore

/// Dataset sizes: voxels per series (slices, rows, columns) covering a ~200 mm head.
public enum SynthSize: String, CaseIterable, Codable, Sendable {
    case small, medium, full

    public var shape: (depth: Int, height: Int, width: Int) {
        switch self {
        case .small: return (48, 112, 112)
        case .medium: return (96, 224, 224)
        case .full: return (300, 512, 512)
        }
    }
}

/// Which transfer syntaxes the series are written in (one per series, drawn by weight).
public enum SyntaxMix: String, CaseIterable, Codable, Sendable {
    /// Mostly uncompressed, with every lossless compression Willis reads from archives.
    case varied
    /// Explicit and Implicit VR Little Endian only.
    case uncompressed
    /// Deflate, RLE, JPEG-LS and JPEG 2000 only (a held-out mix unlike `varied`).
    case compressed

    public var weights: [(TransferSyntax, Double)] {
        switch self {
        case .varied:
            return [(.explicitVRLittleEndian, 0.35), (.implicitVRLittleEndian, 0.15), (.deflatedExplicitVRLittleEndian, 0.1),
                    (.rleLossless, 0.1), (.jpegLSLossless, 0.2), (.jpeg2000Lossless, 0.1)]
        case .uncompressed:
            return [(.explicitVRLittleEndian, 0.7), (.implicitVRLittleEndian, 0.3)]
        case .compressed:
            return [(.deflatedExplicitVRLittleEndian, 0.1), (.rleLossless, 0.2), (.jpegLSLossless, 0.4), (.jpeg2000Lossless, 0.3)]
        }
    }
}

/// How the series are acquired: the slice planes.
public enum OrientationMix: String, CaseIterable, Codable, Sendable {
    /// CT axial (some stacks reversed); MR axial, sagittal or coronal.
    case standard
    /// The same planes tilted by 8–25° about a random axis, as scanners tilt along the skull base
    /// (a held-out mix unlike `standard`: nothing lies on the patient's axes).
    case tilted
}

/// Settings of `willis synth`; the same settings and seed give the same files.
public struct SynthOptions: Codable, Sendable {
    public var count = 40
    public var size = SynthSize.small
    public var seed: UInt64 = 1
    /// Share of series with at least one aneurysm.
    public var positiveFraction = 0.4
    /// Share of series with `segmentations/<uid>.nii` and `<uid>_cowseg.nii`.
    public var segmentationFraction = 0.1
    public var syntaxes = SyntaxMix.varied
    public var orientations = OrientationMix.standard
    /// How the arteries end; `rounded` keeps the datasets written before stop 23.
    public var vesselEnds = VesselEnds.rounded

    public init(count: Int = 40, size: SynthSize = .small, seed: UInt64 = 1) {
        self.count = count
        self.size = size
        self.seed = seed
    }
}

/// What was generated for one series (the truth the tables were written from).
public struct SynthCase: Sendable {
    public var index: Int
    public var seriesInstanceUID: String
    public var modality: Modality
    public var age: Int
    public var sex: String
    public var aneurysms: [Aneurysm]
    public var orientation: String
    public var syntax: TransferSyntax
    public var hasSegmentation: Bool
    /// Filled in when written: the localizer point of each aneurysm.
    public var localizers: [LocalizerPoint] = []
}

public enum SynthDataset {
    /// Location frequencies loosely after the RSNA 2025 training labels (anterior circulation most common).
    static let locationWeights: [(LocationLabel, Double)] = [
        (.anteriorCommunicating, 14), (.leftMCA, 11), (.rightMCA, 11), (.leftSupraclinoidICA, 10), (.rightSupraclinoidICA, 10),
        (.leftInfraclinoidICA, 6), (.rightInfraclinoidICA, 6), (.leftPosteriorCommunicating, 5), (.rightPosteriorCommunicating, 5),
        (.leftACA, 4), (.rightACA, 4), (.basilarTip, 5), (.otherPosteriorCirculation, 5),
    ]

    static func pick<T>(_ weighted: [(T, Double)], using rng: inout SplitMix64) -> T {
        let total = weighted.reduce(0) { $0 + $1.1 }
        var r = Double.random(in: 0..<total, using: &rng)
        for (v, w) in weighted {
            if r < w { return v }
            r -= w
        }
        return weighted[weighted.count - 1].0
    }

    /// `v` rotated by `angle` radians about the unit vector `axis` (Rodrigues).
    static func rotate(_ v: Vector3, _ axis: Vector3, _ angle: Double) -> Vector3 {
        v * cos(angle) + axis.cross(v) * sin(angle) + axis * (axis.dot(v) * (1 - cos(angle)))
    }

    /// Draws one case's parameters and renders it.
    static func make(_ index: Int, _ options: SynthOptions) throws -> (SynthCase, RenderedCase, [String]) {
        var rng = SplitMix64(seed: options.seed, stream: UInt64(index))
        let modality = pick([(Modality.cta, 0.45), (.mra, 0.3), (.mriT2, 0.15), (.mriT1post, 0.1)], using: &rng)
        let tree = CircleOfWillis.make(ends: options.vesselEnds, using: &rng)
        var aneurysms: [Aneurysm] = []
        if Double.random(in: 0..<1, using: &rng) < options.positiveFraction {
            let count = pick([(1, 0.75), (2, 0.2), (3, 0.05)], using: &rng)
            for _ in 0..<count {
                let u = Double.random(in: 0..<1, using: &rng)
                let diameter = 1.5 + 6.5 * u * u  // 1.5–8 mm, small ones most common
                if let a = Aneurysm.place(on: tree, location: pick(locationWeights, using: &rng), diameter: diameter, using: &rng) {
                    aneurysms.append(a)
                }
            }
        }
        // Acquisition: CT is axial; MR is sometimes sagittal or coronal; some stacks run head to foot.
        var orientation = modality == .cta
            ? pick([("axial", 0.75), ("axial reversed", 0.25)], using: &rng)
            : pick([("axial", 0.55), ("axial reversed", 0.15), ("sagittal", 0.15), ("coronal", 0.15)], using: &rng)
        let (d, h, w) = options.size.shape
        let fov = Vector3(200, 200, 150) * Double.random(in: 0.92...1.08, using: &rng)
        let centre = Vector3(Double.random(in: -6...6, using: &rng), 5 + Double.random(in: -6...6, using: &rng),
                             -25 + Double.random(in: -8...8, using: &rng))
        var col = Vector3(1, 0, 0), row = Vector3(0, 1, 0), slice = Vector3(0, 0, 1)
        var extent = (Double(fov.x), Double(fov.y), Double(fov.z))
        switch orientation {
        case "axial reversed": slice = Vector3(0, 0, -1)
        case "sagittal": (col, row, slice) = (Vector3(0, 1, 0), Vector3(0, 0, -1), Vector3(1, 0, 0)); extent = (fov.y, fov.z, fov.x)
        case "coronal": (col, row, slice) = (Vector3(1, 0, 0), Vector3(0, 0, -1), Vector3(0, 1, 0)); extent = (fov.x, fov.z, fov.y)
        default: break
        }
        if options.orientations == .tilted {
            // Its own stream, so a tilted dataset holds the same cases as the standard one of its seed.
            var tilt = SplitMix64(seed: options.seed, stream: UInt64(index) | 1 << 40)
            let axis = Vector3(Double.random(in: -1...1, using: &tilt), Double.random(in: -1...1, using: &tilt),
                               Double.random(in: -1...1, using: &tilt)).normalized
            let angle = Double.random(in: 8...25, using: &tilt) * .pi / 180
            (col, row, slice) = (rotate(col, axis, angle), rotate(row, axis, angle), rotate(slice, axis, angle))
            orientation += String(format: " tilted %.1f°", angle * 180 / .pi)
        }
        let spacing = Vector3(extent.0 / Double(w), extent.1 / Double(h), extent.2 / Double(d))
        let origin = centre - col * (spacing.x * Double(w - 1) / 2) - row * (spacing.y * Double(h - 1) / 2) - slice * (spacing.z * Double(d - 1) / 2)
        let geometry = Geometry(origin: origin, spacing: spacing, columnDirection: col, rowDirection: row, sliceDirection: slice)
        let contrast = ContrastModel.of(modality, using: &rng)
        let rendered = try Phantom.render(shape: (d, h, w), geometry: geometry, tree: tree, aneurysms: aneurysms,
                                          contrast: contrast, seed: rng.next())
        let uid = UID.make(using: &rng)
        // Study and frame of reference UIDs come first in `sops`' stream so every file is reproducible.
        let sops = (0..<(d + 2)).map { _ in UID.make(using: &rng) }
        let info = SynthCase(index: index, seriesInstanceUID: uid, modality: modality, age: Int.random(in: 25...85, using: &rng),
                             sex: Bool.random(using: &rng) ? "Female" : "Male", aneurysms: aneurysms, orientation: orientation,
                             syntax: pick(options.syntaxes.weights, using: &rng),
                             hasSegmentation: Double.random(in: 0..<1, using: &rng) < options.segmentationFraction)
        return (info, rendered, sops)
    }

    /// Writes `options.count` series in the RSNA layout under `root`: series/<uid>/<sop>.dcm,
    /// train.csv, train_localizers.csv and segmentations/. Cases are generated in parallel;
    /// `progress(done, total)` is called as each finishes.
    @discardableResult
    public static func generate(_ options: SynthOptions, into root: String,
                                progress: @escaping @Sendable (Int, Int) -> Void = { _, _ in }) throws -> [SynthCase] {
        for sub in ["series", "segmentations"] {
            try FileManager.default.createDirectory(atPath: "\(root)/\(sub)", withIntermediateDirectories: true)
        }
        var results = [Result<SynthCase, Error>?](repeating: nil, count: options.count)
        let lock = NSLock()
        var done = 0
        results.withUnsafeMutableBufferPointer { out in
            DispatchQueue.concurrentPerform(iterations: options.count) { index in
                out[index] = Result { try writeCase(index, options, root) }
                lock.lock()
                done += 1
                let finished = done
                lock.unlock()
                progress(finished, options.count)
            }
        }
        let cases = try results.map { r -> SynthCase in
            guard let r else { throw DatasetError(file: root, reason: "a case was not generated") }
            return try r.get()
        }
        try writeTables(cases, root)
        return cases
    }

    /// Echo times as such MR series are acquired (typical values, ms): time-of-flight MRA and a 3D
    /// gradient-echo T1 after contrast short, a fast spin-echo T2 long. CT has none.
    static let echoTimeMS: [Modality: Double] = [.mra: 3.4, .mriT2: 102, .mriT1post: 2.9]

    static func writeCase(_ index: Int, _ options: SynthOptions, _ root: String) throws -> SynthCase {
        var (info, rendered, uids) = try make(index, options)
        var writer = SeriesWriter()
        writer.modality = info.modality == .cta ? "CT" : "MR"
        writer.intercept = info.modality == .cta ? -1024 : 0
        writer.seriesInstanceUID = info.seriesInstanceUID
        writer.studyInstanceUID = uids[0]
        writer.frameOfReferenceUID = uids[1]
        let sops = Array(uids.dropFirst(2))
        writer.sopInstanceUIDs = sops
        writer.patientAge = String(format: "%03dY", info.age)
        writer.patientSex = info.sex == "Female" ? "F" : "M"
        writer.seriesDescription = info.modality.rawValue
        writer.echoTimeMS = Self.echoTimeMS[info.modality]
        // Made up, so that what hides identifying fields can be tested on synthetic data.
        writer.patientName = String(format: "SYNTHETIC^CASE%04d", index)
        writer.patientID = String(format: "SYN%06d", index)
        writer.syntax = info.syntax
        // Unsigned stored values (HU + 1024 for CT), as most scanners write them; compressors prefer them.
        writer.signedPixels = false
        try writer.write(rendered.volume, to: "\(root)/series/\(info.seriesInstanceUID)")
        let g = rendered.volume.geometry
        info.localizers = info.aneurysms.map { a in
            let v = g.voxel(a.center)
            let k = max(0, min(rendered.volume.shape.depth - 1, Int(v.z.rounded())))
            return LocalizerPoint(seriesInstanceUID: info.seriesInstanceUID, sopInstanceUID: sops[k], x: v.x, y: v.y, frame: nil,
                                  location: a.location)
        }
        if info.hasSegmentation {
            let labels = try Volume(shape: rendered.volume.shape, voxels: rendered.vesselLabels.map(Float.init), geometry: g)
            let mask = try Volume(shape: rendered.volume.shape, voxels: rendered.vesselLabels.map { $0 > 0 ? 1 : 0 }, geometry: g)
            try NIfTI.write(labels, to: "\(root)/segmentations/\(info.seriesInstanceUID)_cowseg.nii", dataType: .uint8)
            try NIfTI.write(mask, to: "\(root)/segmentations/\(info.seriesInstanceUID).nii", dataType: .uint8)
        }
        return info
    }

    static func writeTables(_ cases: [SynthCase], _ root: String) throws {
        var train = (["SeriesInstanceUID", "PatientAge", "PatientSex", "Modality"] + LocationLabel.allCases.map(\.columnName))
            .map(quoted).joined(separator: ",") + "\n"
        var localizers = "SeriesInstanceUID,SOPInstanceUID,coordinates,location\n"
        for c in cases {
            let present = Set(c.aneurysms.map(\.location))
            let values = LocationLabel.locations.map { present.contains($0) ? "1" : "0" } + [present.isEmpty ? "0" : "1"]
            train += ([c.seriesInstanceUID, String(c.age), c.sex, c.modality.rawValue] + values).map(quoted).joined(separator: ",") + "\n"
            for p in c.localizers {
                let coordinates = String(format: "{'x': %.2f, 'y': %.2f}", p.x, p.y)
                localizers += [p.seriesInstanceUID, p.sopInstanceUID, coordinates, p.location.columnName].map(quoted).joined(separator: ",") + "\n"
            }
        }
        try Data(train.utf8).write(to: URL(fileURLWithPath: "\(root)/train.csv"))
        try Data(localizers.utf8).write(to: URL(fileURLWithPath: "\(root)/train_localizers.csv"))
        // What the RSNA tables do not carry: each aneurysm's centre in the patient and its size, and how
        // each series was acquired, for scoring detection by size and results by acquisition.
        var truth = "SeriesInstanceUID,location,x_mm,y_mm,z_mm,diameter_mm\n"
        var acquisitions = "SeriesInstanceUID,Modality,orientation,transfer_syntax,segmentation\n"
        for c in cases {
            for a in c.aneurysms {
                truth += [c.seriesInstanceUID, quoted(a.location.columnName), String(format: "%.3f", a.center.x), String(format: "%.3f", a.center.y),
                          String(format: "%.3f", a.center.z), String(format: "%.3f", 2 * a.radius)].joined(separator: ",") + "\n"
            }
            acquisitions += [c.seriesInstanceUID, c.modality.rawValue, c.orientation, c.syntax.description, c.hasSegmentation ? "1" : "0"]
                .map(quoted).joined(separator: ",") + "\n"
        }
        try Data(truth.utf8).write(to: URL(fileURLWithPath: "\(root)/synth_aneurysms.csv"))
        try Data(acquisitions.utf8).write(to: URL(fileURLWithPath: "\(root)/synth_series.csv"))
    }

    static func quoted(_ s: String) -> String {
        s.contains(",") || s.contains("\"") ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }
}

/// One row of `synth_aneurysms.csv`: what the generator placed.
public struct SynthAneurysm: Sendable, Equatable {
    public var seriesInstanceUID: String
    public var location: LocationLabel
    /// Centre in patient coordinates (LPS, mm).
    public var center: Vector3
    public var diameter: Double

    /// Reads the file `willis synth` writes beside the RSNA tables.
    public static func read(_ path: String) throws -> [SynthAneurysm] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw DatasetError(file: path, reason: "cannot be read")
        }
        var lines = text.split(whereSeparator: \.isNewline).map(String.init)
        guard let header = lines.first, header.hasPrefix("SeriesInstanceUID,location,x_mm") else {
            throw DatasetError(file: path, reason: "is not a synth_aneurysms.csv (header \(lines.first?.prefix(60) ?? ""))")
        }
        lines.removeFirst()
        return try lines.enumerated().map { n, line in
            // Location names hold no commas, so the fields split plainly.
            let f = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard f.count == 6, let location = LocationLabel.allCases.first(where: { $0.columnName == f[1] }),
                  let x = Double(f[2]), let y = Double(f[3]), let z = Double(f[4]), let d = Double(f[5]) else {
                throw DatasetError(file: path, reason: "line \(n + 2) is not uid,location,x,y,z,diameter")
            }
            return SynthAneurysm(seriesInstanceUID: f[0], location: location, center: Vector3(x, y, z), diameter: d)
        }
    }
}
