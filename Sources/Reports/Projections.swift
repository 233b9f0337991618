import VolumeCore

/// Maximum-intensity projections of a volume, as grey 8-bit images.
public enum Projection: String, CaseIterable, Sendable {
    case axial, coronal, sagittal

    /// The MIP along this view's axis of the canonical (LPS+) volume, over the central half of that
    /// axis (so the skull in front and behind does not hide the vessels), windowed on the image's own
    /// values. Coronal and sagittal images are flipped so the head is up.
    public func image(of volume: Volume) -> (width: Int, height: Int, pixels: [UInt8]) {
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
        let (low, high) = displayWindow(out)
        return (width, height, out.map { UInt8(max(0, min(255, ($0 - low) / max(high - low, 1e-6) * 255))) })
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
