/// The 13 artery locations of the RSNA Intracranial Aneurysm Detection labels, in the
/// competition's column order, followed by "Aneurysm Present".
public enum LocationLabel: Int, CaseIterable, Codable, Sendable, CustomStringConvertible {
    case leftInfraclinoidICA = 0
    case rightInfraclinoidICA
    case leftSupraclinoidICA
    case rightSupraclinoidICA
    case leftMCA
    case rightMCA
    case anteriorCommunicating
    case leftACA
    case rightACA
    case leftPosteriorCommunicating
    case rightPosteriorCommunicating
    case basilarTip
    case otherPosteriorCirculation
    case aneurysmPresent

    /// The 13 locations, without "Aneurysm Present".
    public static let locations: [LocationLabel] = Array(allCases.dropLast())

    /// The column name in train.csv and submission.csv.
    public var columnName: String {
        switch self {
        case .leftInfraclinoidICA: return "Left Infraclinoid Internal Carotid Artery"
        case .rightInfraclinoidICA: return "Right Infraclinoid Internal Carotid Artery"
        case .leftSupraclinoidICA: return "Left Supraclinoid Internal Carotid Artery"
        case .rightSupraclinoidICA: return "Right Supraclinoid Internal Carotid Artery"
        case .leftMCA: return "Left Middle Cerebral Artery"
        case .rightMCA: return "Right Middle Cerebral Artery"
        case .anteriorCommunicating: return "Anterior Communicating Artery"
        case .leftACA: return "Left Anterior Cerebral Artery"
        case .rightACA: return "Right Anterior Cerebral Artery"
        case .leftPosteriorCommunicating: return "Left Posterior Communicating Artery"
        case .rightPosteriorCommunicating: return "Right Posterior Communicating Artery"
        case .basilarTip: return "Basilar Tip"
        case .otherPosteriorCirculation: return "Other Posterior Circulation"
        case .aneurysmPresent: return "Aneurysm Present"
        }
    }

    public init?(columnName: String) {
        guard let match = Self.allCases.first(where: { $0.columnName == columnName }) else { return nil }
        self = match
    }

    /// The same artery on the other side, for left-right flips; midline locations map to themselves.
    public var mirrored: LocationLabel {
        switch self {
        case .leftInfraclinoidICA: return .rightInfraclinoidICA
        case .rightInfraclinoidICA: return .leftInfraclinoidICA
        case .leftSupraclinoidICA: return .rightSupraclinoidICA
        case .rightSupraclinoidICA: return .leftSupraclinoidICA
        case .leftMCA: return .rightMCA
        case .rightMCA: return .leftMCA
        case .leftACA: return .rightACA
        case .rightACA: return .leftACA
        case .leftPosteriorCommunicating: return .rightPosteriorCommunicating
        case .rightPosteriorCommunicating: return .leftPosteriorCommunicating
        default: return self
        }
    }

    public var description: String { columnName }
}
