import Anatomy
import Foundation

/// The Circle of Willis seen from below, as on an axial image (the patient's left on the viewer's
/// right), with each of the 13 locations a node coloured and labelled by its probability.
public enum Schematic {
    /// Node centres in a 400 × 340 view box.
    static let positions: [LocationLabel: (x: Double, y: Double)] = [
        .leftACA: (240, 34), .rightACA: (160, 34), .anteriorCommunicating: (200, 72),
        .leftSupraclinoidICA: (262, 132), .rightSupraclinoidICA: (138, 132),
        .leftMCA: (350, 112), .rightMCA: (50, 112),
        .leftInfraclinoidICA: (330, 176), .rightInfraclinoidICA: (70, 176),
        .leftPosteriorCommunicating: (262, 206), .rightPosteriorCommunicating: (138, 206),
        .basilarTip: (200, 252), .otherPosteriorCirculation: (200, 312),
    ]
    /// Vessel segments drawn under the nodes.
    static let vessels: [(LocationLabel, LocationLabel)] = [
        (.anteriorCommunicating, .leftACA), (.anteriorCommunicating, .rightACA),
        (.anteriorCommunicating, .leftSupraclinoidICA), (.anteriorCommunicating, .rightSupraclinoidICA),
        (.leftSupraclinoidICA, .leftMCA), (.rightSupraclinoidICA, .rightMCA),
        (.leftSupraclinoidICA, .leftInfraclinoidICA), (.rightSupraclinoidICA, .rightInfraclinoidICA),
        (.leftSupraclinoidICA, .leftPosteriorCommunicating), (.rightSupraclinoidICA, .rightPosteriorCommunicating),
        (.leftPosteriorCommunicating, .basilarTip), (.rightPosteriorCommunicating, .basilarTip),
        (.basilarTip, .otherPosteriorCirculation),
    ]
    /// Where labels sit relative to their node where the default (below) would collide.
    static let labelOffsets: [LocationLabel: (dx: Double, dy: Double)] = [
        .leftInfraclinoidICA: (14, 30), .rightInfraclinoidICA: (-14, 30),
        .basilarTip: (52, 4), .otherPosteriorCirculation: (62, 4),
        .leftPosteriorCommunicating: (0, 30), .rightPosteriorCommunicating: (0, 30),
    ]
    static let shortNames: [LocationLabel: String] = [
        .leftInfraclinoidICA: "L infraclinoid ICA", .rightInfraclinoidICA: "R infraclinoid ICA",
        .leftSupraclinoidICA: "L supraclinoid ICA", .rightSupraclinoidICA: "R supraclinoid ICA",
        .leftMCA: "L MCA", .rightMCA: "R MCA", .anteriorCommunicating: "ACom", .leftACA: "L ACA", .rightACA: "R ACA",
        .leftPosteriorCommunicating: "L PCom", .rightPosteriorCommunicating: "R PCom", .basilarTip: "Basilar tip",
        .otherPosteriorCirculation: "Other posterior",
    ]

    /// Fill for a probability: dark grey at 0 through orange to red at 1.
    static func colour(_ p: Double) -> String {
        let t = max(0, min(1, p.isFinite ? p : 0))
        let r = Int(60 + 195 * t), g = Int(60 + 90 * t * (1 - t) * 4 * 0.5), b = Int(70 * (1 - t))
        return String(format: "#%02x%02x%02x", r, g, b)
    }

    /// The SVG, with `probabilities` in the competition's column order (14 values; fewer draws the
    /// vessels only). Each node carries `data-location` and `data-probability` for scripts and tests.
    public static func svg(probabilities: [Double]?) -> String {
        let p = probabilities.flatMap { $0.count == LocationLabel.allCases.count ? $0 : nil }
        var s = #"<svg class="schematic" viewBox="0 0 400 340" role="img" aria-label="Circle of Willis with the probability at each location" xmlns="http://www.w3.org/2000/svg">"#
        s += #"<text x="8" y="330" class="side">R</text><text x="384" y="330" class="side">L</text>"#
        for (a, b) in vessels {
            guard let u = positions[a], let v = positions[b] else { continue }
            s += String(format: #"<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" class="vessel"/>"#, u.x, u.y, v.x, v.y)
        }
        for label in LocationLabel.locations {
            guard let c = positions[label] else { continue }
            let value = p?[label.rawValue]
            let fill = value.map(colour) ?? "#444"
            let text = value.map { String(format: "%.0f", $0 * 100) } ?? "–"
            s += #"<g class="node" data-location="\#(HTML.escape(label.columnName))" data-probability="\#(value.map { String(format: "%.4f", $0) } ?? "")">"#
            s += #"<title>\#(HTML.escape(label.columnName)): \#(value.map { String(format: "%.1f %%", $0 * 100) } ?? "no prediction")</title>"#
            s += String(format: #"<circle cx="%.0f" cy="%.0f" r="16" fill="%@"/>"#, c.x, c.y, fill)
            s += String(format: #"<text x="%.0f" y="%.0f" class="value">%@</text>"#, c.x, c.y + 4, text)
            let offset = labelOffsets[label] ?? (0, 29)
            s += String(format: #"<text x="%.0f" y="%.0f" class="label">%@</text>"#, c.x + offset.dx, c.y + offset.dy, shortNames[label] ?? "")
            s += "</g>"
        }
        return s + "</svg>"
    }
}

/// Escaping for text and attribute values.
public enum HTML {
    public static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for ch in s {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(ch)
            }
        }
        return out
    }
}
