/// Value representations (PS3.5 §6.2).
public enum VR: String, Sendable, CaseIterable {
    case AE, AS, AT, CS, DA, DS, DT, FL, FD, IS, LO, LT, OB, OD, OF, OL, OV, OW, PN, SH, SL, SQ, SS, ST,
        SV, TM, UC, UI, UL, UN, UR, US, UT, UV

    init?(bytes a: UInt8, _ b: UInt8) {
        guard (65...90).contains(a), (65...90).contains(b) else { return nil }
        self.init(rawValue: String(decoding: [a, b], as: UTF8.self))
    }

    /// Explicit VR encodings with a 2-byte reserved field and a 4-byte length.
    var hasLongLength: Bool {
        switch self {
        case .OB, .OD, .OF, .OL, .OV, .OW, .SQ, .SV, .UC, .UN, .UR, .UT, .UV: return true
        default: return false
        }
    }

    var isText: Bool {
        switch self {
        case .AE, .AS, .CS, .DA, .DS, .DT, .IS, .LO, .LT, .PN, .SH, .ST, .TM, .UC, .UI, .UR, .UT: return true
        default: return false
        }
    }
}
