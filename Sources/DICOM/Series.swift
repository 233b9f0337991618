import Foundation
import VolumeCore

/// A DICOM series read into a volume, with what downstream stages need to know
/// about it. Patient-identifying fields are absent unless asked for.
public struct Series: Sendable {
    public var volume: Volume
    public var seriesInstanceUID: String
    public var modality: String
    public var transferSyntaxes: [TransferSyntax]
    /// SOPInstanceUID and frame number of each slice k of the volume (for localizer points).
    public var slices: [(sopInstanceUID: String, frame: Int)]
    /// What was odd about the series: split-off localizers, uneven spacing, gantry tilt, …
    public var warnings: [String]
    /// Gantry or detector tilt in degrees (0 for an orthogonal stack).
    public var tiltDegrees: Double
    public var sliceThickness: Double?
    public var manufacturer: String?
    public var seriesDescription: String?
    /// An MR's echo time in ms: EchoTime, or an enhanced object's EffectiveEchoTime (shared functional
    /// groups first, else the first frame's). Nil when the file has neither or it is not a finite value ≥ 0.
    public var echoTimeMS: Double?
    /// PatientAge and PatientSex: needed as model inputs in the RSNA data, not identifying on their own.
    public var patientAge: String?
    public var patientSex: String?
    /// PatientName, PatientID, PatientBirthDate: only with `SeriesLoader.Options.includePHI`.
    public var identifyingFields: [String: String]?
}

/// A series found in a folder, before its pixels are read.
public struct SeriesHeader: Sendable {
    public var seriesInstanceUID: String
    public var modality: String
    public var files: [String]
    public var frameCount: Int
    public var rows: Int
    public var columns: Int
    public var transferSyntaxes: Set<String>
    /// SeriesDescription and the echo time (`Series.echoTimeMS`) of its first file.
    public var seriesDescription: String? = nil
    public var echoTimeMS: Double? = nil
}

/// What `SeriesLoader.inspect` finds for one series, without decoding pixels.
public struct SeriesSummary: Sendable {
    public var header: SeriesHeader
    /// Nil when the series cannot be assembled (the reason is in `warnings`).
    public var geometry: Geometry?
    public var sliceCount: Int
    public var warnings: [String]
}
