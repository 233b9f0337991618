import VolumeCore

/// Maximum-intensity projections of a volume, as grey 8-bit images.
public enum Projection: String, CaseIterable, Sendable {
    case axial, coronal, sagittal

    /// The MIP along this view's axis of the canonical (LPS+) volume, over the central half of that
    /// axis (so the skull in front and behind does not hide the vessels), windowed on the image's own
    /// values. Coronal and sagittal images are flipped so the head is up, and stretched vertically by
    /// the slice spacing over the in-plane spacing, so anatomy keeps its proportions.
    public func image(of volume: Volume) -> (width: Int, height: Int, pixels: [UInt8]) {
        let (width, height, out) = project(volume)
        let (low, high) = displayWindow(out)
        let grey = out.map { UInt8(max(0, min(255, ($0 - low) / max(high - low, 1e-6) * 255))) }
        return Self.stretchRows(grey, width: width, height: height, by: aspect(volume))
    }

    /// `image` in grey with `heat` (values in [0, 1] on the same grid, projected the same way) laid over
    /// it in red, opaque where the heat is 1: RGB, 3 bytes a pixel.
    public func overlay(_ volume: Volume, heat: Volume) -> (width: Int, height: Int, rgb: [UInt8]) {
        let grey = image(of: volume)
        let (w, h, raw) = project(heat)
        let heatBytes = Self.stretchRows(raw.map { UInt8(max(0, min(255, $0 * 255))) }, width: w, height: h, by: aspect(heat))
        var rgb = [UInt8](repeating: 0, count: grey.pixels.count * 3)
        for (n, g) in grey.pixels.enumerated() {
            let a = n < heatBytes.pixels.count ? Double(heatBytes.pixels[n]) / 255 : 0
            let base = Double(g) * (1 - a)
            rgb[3 * n] = UInt8(min(255, (base + 255 * a).rounded()))
            rgb[3 * n + 1] = UInt8(base.rounded())
            rgb[3 * n + 2] = UInt8(base.rounded())
        }
        return (grey.width, grey.height, rgb)
    }

    func aspect(_ volume: Volume) -> Double {
        let s = volume.geometry.spacing
        let (horizontal, vertical) = self == .axial ? (s.x, s.y) : self == .coronal ? (s.x, s.z) : (s.y, s.z)
        return vertical / horizontal
    }

    /// The raw MIP (before windowing and stretching), head up for coronal and sagittal.
    public func project(_ volume: Volume) -> (width: Int, height: Int, values: [Float]) {
        let (d, h, w) = (volume.shape.depth, volume.shape.height, volume.shape.width)
        func slab(_ n: Int) -> Range<Int> { (n / 4)..<max(n / 4 + 1, n - n / 4) }
        let (width, height): (Int, Int)
        var out: [Float]
        switch self {
        case .axial:
            (width, height) = (w, h)
            out = [Float](repeating: -.infinity, count: h * w)
            for k in slab(d) { for j in 0..<h { for i in 0..<w { out[j * w + i] = max(out[j * w + i], volume[k, j, i]) } } }
        case .coronal:
            (width, height) = (w, d)
            out = [Float](repeating: -.infinity, count: d * w)
            for k in 0..<d { for j in slab(h) { for i in 0..<w { out[(d - 1 - k) * w + i] = max(out[(d - 1 - k) * w + i], volume[k, j, i]) } } }
        case .sagittal:
            (width, height) = (h, d)
            out = [Float](repeating: -.infinity, count: d * h)
            for k in 0..<d { for j in 0..<h { for i in slab(w) { out[(d - 1 - k) * h + j] = max(out[(d - 1 - k) * h + j], volume[k, j, i]) } } }
        }
        return (width, height, out)
    }

    /// Rows resampled (linearly) to `height × factor`, for pixels that are `factor` times taller than wide.
    static func stretchRows(_ pixels: [UInt8], width: Int, height: Int, by factor: Double) -> (width: Int, height: Int, pixels: [UInt8]) {
        let newHeight = Int((Double(height) * factor).rounded())
        guard factor.isFinite, abs(factor - 1) > 0.02, newHeight >= 1, newHeight <= 8 * max(height, 1), height > 1 else {
            return (width, height, pixels)
        }
        var out = [UInt8](repeating: 0, count: width * newHeight)
        for y in 0..<newHeight {
            // Centre-aligned: output row y covers source position (y + 0.5) / factor − 0.5.
            let source = min(max((Double(y) + 0.5) / factor - 0.5, 0), Double(height - 1))
            let y0 = min(Int(source), height - 2), t = source - Double(y0)
            for x in 0..<width {
                let a = Double(pixels[y0 * width + x]), b = Double(pixels[(y0 + 1) * width + x])
                out[y * width + x] = UInt8((a + (b - a) * t).rounded())
            }
        }
        return (width, newHeight, out)
    }
}

/// A display window from the values: their 50th and 97th percentiles (vessels stand out in MIPs;
/// the brightest few percent, bone, saturate).
public func displayWindow(_ values: [Float]) -> (low: Float, high: Float) {
    let finite = values.filter(\.isFinite)
    guard !finite.isEmpty else { return (0, 1) }
    let stride = max(1, finite.count / 200_000)
    let sample = Swift.stride(from: 0, to: finite.count, by: stride).map { finite[$0] }.sorted()
    return (sample[sample.count / 2], sample[min(sample.count - 1, Int(Double(sample.count) * 0.97))])
}
