import ArgumentParser
import DICOM
import Dataset
import Foundation
import Preprocessing
import VolumeCore

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Describe the DICOM series under a folder (or one file) without reading pixels.",
        discussion: """
            Per series: modality and description, how its vessels read (bright, or dark as T2's flow \
            voids: from the echo time, else the description), size, spacing, orientation, transfer \
            syntax, slice count and warnings (split-off localizers, uneven spacing, gantry tilt, \
            unreadable files).
            """)

    @Argument(help: "A DICOM file, or a folder searched recursively.")
    var path: String

    @Flag(help: "Print JSON instead of text.")
    var json = false

    func run() throws {
        let (found, unreadable) = try SeriesLoader().inspect(path)
        guard !found.isEmpty else {
            throw ValidationError("no DICOM image series under \(path)" + (unreadable.first.map { " (\(unreadable.count) unreadable file(s), e.g. \($0))" } ?? ""))
        }
        if json {
            var out: [[String: Any]] = []
            for s in found {
                var item: [String: Any] = [
                    "series_instance_uid": s.header.seriesInstanceUID, "modality": s.header.modality,
                    "rows": s.header.rows, "columns": s.header.columns, "slices": s.sliceCount,
                    "files": s.header.files.count, "transfer_syntaxes": s.header.transferSyntaxes.sorted(),
                    "warnings": s.warnings, "vessel_contrast": DotFilter.VesselContrast(s.header).rawValue,
                ]
                if let d = s.header.seriesDescription, !d.isEmpty { item["series_description"] = d }
                if let te = s.header.echoTimeMS { item["echo_time_ms"] = te }
                if let g = s.geometry {
                    item["spacing"] = [g.spacing.x, g.spacing.y, g.spacing.z]
                    item["affine_lps"] = g.affineLPS
                    item["orientation"] = Orientation.name(g)
                }
                out.append(item)
            }
            let report: [String: Any] = ["series": out, "unreadable": unreadable.map { "\($0)" }]
            let data = try JSONSerialization.data(withJSONObject: report, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        for s in found {
            print("series \(s.header.seriesInstanceUID)")
            print("  modality         \(s.header.modality)" + (s.header.seriesDescription.flatMap { $0.isEmpty ? nil : ", \"\($0)\"" } ?? ""))
            print("  vessels          \(DotFilter.VesselContrast(s.header).reading(echoTimeMS: s.header.echoTimeMS))")
            print("  size             \(s.header.columns) × \(s.header.rows) × \(s.sliceCount) (columns × rows × slices), \(s.header.files.count) file(s)")
            if let g = s.geometry {
                print(String(format: "  spacing          %.4g × %.4g × %.4g mm", g.spacing.x, g.spacing.y, g.spacing.z))
                print("  orientation      \(Orientation.name(g)) (columns \(g.columnDirection), rows \(g.rowDirection), slices \(g.sliceDirection))")
                print("  origin           \(g.origin) mm (LPS)")
            }
            let names = s.header.transferSyntaxes.sorted().map { TransferSyntax(uid: $0).name }
            print("  transfer syntax  \(names.joined(separator: ", "))")
            print("  warnings         \(s.warnings.isEmpty ? "none" : s.warnings.joined(separator: "\n                   "))")
        }
        if !unreadable.isEmpty {
            print("\(unreadable.count) file(s) not read as DICOM images:")
            for e in unreadable { print("  \(e)") }
        }
    }
}

enum Orientation {
    /// Axial, coronal or sagittal by the slice normal's main axis, "oblique" when none dominates.
    static func name(_ g: Geometry) -> String {
        let n = g.columnDirection.cross(g.rowDirection)
        let a = [abs(n.x), abs(n.y), abs(n.z)]
        guard let m = a.max(), m > 0.9 else { return "oblique" }
        return m == a[2] ? "axial" : m == a[1] ? "coronal" : "sagittal"
    }
}

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a DICOM series as NIfTI (.nii or .nii.gz) with its true affine.",
        discussion: """
            Voxels are the rescaled values (HU for CT). The NIfTI sform and qform hold the \
            series' voxel-to-patient transform (in NIfTI's RAS convention), so the image \
            overlays the DICOM in 3D Slicer or ITK-SNAP.
            """)

    @Argument(help: "A folder holding one DICOM series (or a multi-frame file).")
    var series: String

    @Argument(help: "Output path ending in .nii or .nii.gz.")
    var output: String

    @Option(help: "SeriesInstanceUID to pick when the folder holds several.")
    var seriesUID: String?

    @Option(help: "float32, int16 or uint8.")
    var datatype: String = "float32"

    @Option(help: "NIfTI version: 1 or 2.")
    var niftiVersion: Int = 1

    @Flag(help: "Reorient to the canonical LPS+ axis order first (no resampling).")
    var canonical = false

    func run() throws {
        guard output.hasSuffix(".nii") || output.hasSuffix(".nii.gz") else {
            throw ValidationError("output must end in .nii or .nii.gz")
        }
        let type: NIfTIType
        switch datatype {
        case "float32": type = .float32
        case "int16": type = .int16
        case "uint8": type = .uint8
        default: throw ValidationError("--datatype must be float32, int16 or uint8")
        }
        let loaded = try SeriesLoader().load(series, seriesInstanceUID: seriesUID)
        let volume = canonical ? try loaded.volume.canonical() : loaded.volume
        try NIfTIWriterBridge.write(volume, to: output, type: type, version: niftiVersion)
        for w in loaded.warnings { FileHandle.standardError.write(Data("warning: \(w)\n".utf8)) }
        print("wrote \(output): \(volume.shape.width) × \(volume.shape.height) × \(volume.shape.depth) \(datatype), modality \(loaded.modality)")
    }
}
