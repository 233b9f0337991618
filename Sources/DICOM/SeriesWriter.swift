import Foundation
import VolumeCore

/// Writes a `Volume` as a DICOM series, one file per slice named by SOPInstanceUID (the
/// RSNA layout). Values are stored as 16-bit integers through `slope` and `intercept`, natively or
/// compressed losslessly, as `syntax` says.
public struct SeriesWriter: Sendable {
    public var modality = "CT"
    public var slope = 1.0
    public var intercept = -1024.0
    public var seriesInstanceUID = UID.make()
    public var studyInstanceUID = UID.make()
    public var frameOfReferenceUID = UID.make()
    /// One SOPInstanceUID per slice, for reproducible files; new random ones when nil.
    public var sopInstanceUIDs: [String]?
    public var patientAge: String?
    public var patientSex: String?
    public var seriesDescription: String?
    /// EchoTime in ms (MR).
    public var echoTimeMS: Double?
    /// Identifying fields, for tests of what is hidden (synthetic data carries made-up ones).
    public var patientName: String?
    public var patientID: String?
    public var syntax = TransferSyntax.explicitVRLittleEndian
    /// Two's complement stored values (Pixel Representation 1); otherwise 0–65535.
    public var signedPixels = true

    public init() {}

    static let ctImageStorage = "1.2.840.10008.5.1.4.1.1.2"
    static let mrImageStorage = "1.2.840.10008.5.1.4.1.1.4"

    /// Writes every slice into `folder` (created if needed); returns the SOPInstanceUID of each slice k.
    @discardableResult
    public func write(_ volume: Volume, to folder: String) throws -> [String] {
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw DICOMError(.io("cannot create folder: \(error.localizedDescription)"), file: folder)
        }
        let g = volume.geometry
        let frameOfReference = frameOfReferenceUID
        if let given = sopInstanceUIDs, given.count != volume.shape.depth {
            throw DICOMError(.malformed("\(given.count) SOPInstanceUIDs for \(volume.shape.depth) slices"), file: folder)
        }
        let plane = volume.rows * volume.columns
        var uids: [String] = []
        for k in 0..<volume.shape.depth {
            var set = DataSetWriter()
            let sop = sopInstanceUIDs?[k] ?? UID.make()
            uids.append(sop)
            set.set(.sopClassUID, .UI, modality == "CT" ? Self.ctImageStorage : Self.mrImageStorage)
            set.set(.sopInstanceUID, .UI, sop)
            set.set(.modality, .CS, modality)
            set.set(.studyInstanceUID, .UI, studyInstanceUID)
            set.set(.seriesInstanceUID, .UI, seriesInstanceUID)
            set.set(.frameOfReferenceUID, .UI, frameOfReference)
            set.set(.instanceNumber, .IS, String(k + 1))
            if let patientAge { set.set(.patientAge, .AS, patientAge) }
            if let patientSex { set.set(.patientSex, .CS, patientSex) }
            if let seriesDescription { set.set(.seriesDescription, .LO, seriesDescription) }
            if let echoTimeMS { set.set(.echoTime, decimals: [echoTimeMS]) }
            if let patientName { set.set(.patientName, .PN, patientName) }
            if let patientID { set.set(.patientID, .LO, patientID) }
            let p = g.patient(i: 0, j: 0, k: Double(k))
            set.set(.imagePositionPatient, decimals: [p.x, p.y, p.z])
            let c = g.columnDirection, r = g.rowDirection
            set.set(.imageOrientationPatient, decimals: [c.x, c.y, c.z, r.x, r.y, r.z])
            set.set(.pixelSpacing, decimals: [g.spacing.y, g.spacing.x])
            set.set(.sliceThickness, decimals: [g.spacing.z])
            set.set(.samplesPerPixel, unsigned: 1)
            set.set(.photometricInterpretation, .CS, "MONOCHROME2")
            set.set(.rows, unsigned: UInt16(clamping: volume.rows))
            set.set(.columns, unsigned: UInt16(clamping: volume.columns))
            set.set(.bitsAllocated, unsigned: 16)
            set.set(.bitsStored, unsigned: 16)
            set.set(.highBit, unsigned: 15)
            set.set(.pixelRepresentation, unsigned: signedPixels ? 1 : 0)
            set.set(.rescaleSlope, decimals: [slope])
            set.set(.rescaleIntercept, decimals: [intercept])
            let slice = volume.voxels[(k * plane)..<((k + 1) * plane)]
            let (low, high) = signedPixels ? (-32768.0, 32767.0) : (0.0, 65535.0)
            let stored = slice.map { v -> UInt16 in
                let s = ((Double(v) - intercept) / slope).rounded()
                guard s.isFinite else { return 0 }
                let clamped = Int(max(low, min(high, s)))
                return UInt16(truncatingIfNeeded: clamped)
            }
            if syntax.isEncapsulated {
                set.setEncapsulatedPixels([try PixelEncoder.encode(stored, rows: volume.rows, columns: volume.columns,
                                                                   signed: signedPixels, syntax: syntax)])
            } else {
                set.setPixels(stored.lazy.map { Int16(bitPattern: $0) })
            }
            try set.write(to: (folder as NSString).appendingPathComponent("\(sop).dcm"), syntax: syntax)
        }
        return uids
    }
}

/// DICOM UIDs.
public enum UID {
    /// A new UID under the 2.25 root: the decimal value of a random UUID (PS3.5 B.2).
    public static func make() -> String {
        let u = UUID().uuid
        return make(bytes: [u.0, u.1, u.2, u.3, u.4, u.5, u.6, u.7, u.8, u.9, u.10, u.11, u.12, u.13, u.14, u.15])
    }

    /// A UID drawn from `rng`: reproducible for a seeded generator (synthetic datasets).
    public static func make<G: RandomNumberGenerator>(using rng: inout G) -> String {
        let a = rng.next() as UInt64, b = rng.next() as UInt64
        return make(bytes: (0..<8).map { UInt8(truncatingIfNeeded: a >> (8 * UInt64($0))) }
                         + (0..<8).map { UInt8(truncatingIfNeeded: b >> (8 * UInt64($0))) })
    }

    /// "2.25." and the 128-bit big-endian number `bytes` in decimal.
    static func make(bytes input: [UInt8]) -> String {
        var bytes = input
        var digits: [Character] = []
        // Repeated division of the 128-bit big-endian number by 10.
        while bytes.contains(where: { $0 != 0 }) {
            var remainder = 0
            for i in bytes.indices {
                let value = remainder * 256 + Int(bytes[i])
                bytes[i] = UInt8(value / 10)
                remainder = value % 10
            }
            digits.append(Character(String(remainder)))
        }
        return "2.25." + (digits.isEmpty ? "0" : String(digits.reversed()))
    }
}
