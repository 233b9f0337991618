/// How a data set and its pixels are encoded (PS3.5 §10, PS3.6 Annex A).
public struct TransferSyntax: Equatable, Hashable, Sendable, CustomStringConvertible {
    public let uid: String

    public init(uid: String) { self.uid = uid }

    public static let implicitVRLittleEndian = TransferSyntax(uid: "1.2.840.10008.1.2")
    public static let explicitVRLittleEndian = TransferSyntax(uid: "1.2.840.10008.1.2.1")
    public static let deflatedExplicitVRLittleEndian = TransferSyntax(uid: "1.2.840.10008.1.2.1.99")
    public static let explicitVRBigEndian = TransferSyntax(uid: "1.2.840.10008.1.2.2")
    public static let jpegBaseline = TransferSyntax(uid: "1.2.840.10008.1.2.4.50")
    public static let jpegExtended = TransferSyntax(uid: "1.2.840.10008.1.2.4.51")
    public static let jpegLossless = TransferSyntax(uid: "1.2.840.10008.1.2.4.57")
    public static let jpegLosslessSV1 = TransferSyntax(uid: "1.2.840.10008.1.2.4.70")
    public static let jpegLSLossless = TransferSyntax(uid: "1.2.840.10008.1.2.4.80")
    public static let jpegLSNearLossless = TransferSyntax(uid: "1.2.840.10008.1.2.4.81")
    public static let jpeg2000Lossless = TransferSyntax(uid: "1.2.840.10008.1.2.4.90")
    public static let jpeg2000 = TransferSyntax(uid: "1.2.840.10008.1.2.4.91")
    public static let htj2kLossless = TransferSyntax(uid: "1.2.840.10008.1.2.4.201")
    public static let htj2kLosslessRPCL = TransferSyntax(uid: "1.2.840.10008.1.2.4.202")
    public static let htj2k = TransferSyntax(uid: "1.2.840.10008.1.2.4.203")
    public static let rleLossless = TransferSyntax(uid: "1.2.840.10008.1.2.5")

    public var isImplicitVR: Bool { self == .implicitVRLittleEndian }
    public var isBigEndian: Bool { self == .explicitVRBigEndian }
    public var isDeflated: Bool { self == .deflatedExplicitVRLittleEndian }
    /// Pixel data stored as fragments (PS3.5 A.4).
    public var isEncapsulated: Bool {
        !(self == .implicitVRLittleEndian || self == .explicitVRLittleEndian || self == .explicitVRBigEndian
            || self == .deflatedExplicitVRLittleEndian)
    }
    /// Decoding may differ from the original by small amounts.
    public var isLossy: Bool {
        [.jpegBaseline, .jpegExtended, .jpegLSNearLossless, .jpeg2000, .htj2k].contains(self)
    }

    public var name: String {
        switch self {
        case .implicitVRLittleEndian: return "Implicit VR Little Endian"
        case .explicitVRLittleEndian: return "Explicit VR Little Endian"
        case .deflatedExplicitVRLittleEndian: return "Deflated Explicit VR Little Endian"
        case .explicitVRBigEndian: return "Explicit VR Big Endian"
        case .jpegBaseline: return "JPEG Baseline (Process 1)"
        case .jpegExtended: return "JPEG Extended (Process 2 & 4)"
        case .jpegLossless: return "JPEG Lossless, Non-Hierarchical (Process 14)"
        case .jpegLosslessSV1: return "JPEG Lossless, Process 14, SV1"
        case .jpegLSLossless: return "JPEG-LS Lossless"
        case .jpegLSNearLossless: return "JPEG-LS Near-Lossless"
        case .jpeg2000Lossless: return "JPEG 2000 Lossless"
        case .jpeg2000: return "JPEG 2000"
        case .htj2kLossless, .htj2kLosslessRPCL: return "High-Throughput JPEG 2000 Lossless"
        case .htj2k: return "High-Throughput JPEG 2000"
        case .rleLossless: return "RLE Lossless"
        default: return uid
        }
    }

    public var description: String { name }
}
