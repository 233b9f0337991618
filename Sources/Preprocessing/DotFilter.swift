import Foundation
import VolumeCore

/// A training-free measure of bright balls: Li et al.'s dot enhancement on the Hessian of the image smoothed
/// at several scales. Where all three eigenvalues are negative (the image bends down in every direction) it is
/// σ² λ₃² / |λ₁|, λ₃ the weakest curvature and λ₁ the strongest; along a tube λ₃ is near zero, so tubes fade
/// and balls stand out, such as a saccular aneurysm on its parent vessel. Its strongest local maxima hold far
/// more of the synthetic held-out aneurysms than the detector's heatmap peaks do, the small ones above all,
/// when it sees a series' own voxels (RESULTS.md, stop 25); it ranks series poorly, so it is a source of
/// candidates for a classifier, not a score. Derivatives follow scipy.ndimage.gaussian_filter (kernels
/// truncated at 4σ, mirrored edges), the definition in tools/analysis/hessian_blobs.py.
public struct DotFilter: Sendable, Equatable {
    /// Names the candidates this code returns: raise it whenever a change here moves them, so that
    /// candidates kept on disk by an earlier version (`willis train-candidates`' cache) are made again
    /// rather than read back.
    public static let revision = 2

    /// Gaussian scales in mm: aneurysms of 1.5–8 mm across.
    public var scalesMM: [Double] = [0.5, 0.8, 1.2, 1.8]

    /// Where candidates are read.
    public enum PeakSearch: String, Codable, Sendable, Equatable, CaseIterable {
        /// The local maxima of the largest measure over the scales.
        case acrossScales
        /// The local maxima of each scale's measure, strongest first, each left out when a stronger one
        /// kept before lies within its window. A small aneurysm beside a junction of larger vessels can
        /// be a maximum at a small scale while the larger scales' response of the junction covers it in
        /// the largest over the scales, so that no maximum of that lies near it (RESULTS.md, stop 42). More
        /// small aneurysms then lie near a candidate, but among more false ones (stop 43).
        case eachScale
    }

    public var peakSearch: PeakSearch

    public init(scalesMM: [Double] = [0.5, 0.8, 1.2, 1.8], peakSearch: PeakSearch = .acrossScales) {
        self.scalesMM = scalesMM
        self.peakSearch = peakSearch
    }

    /// The measure at every voxel of `image` (shape [D, H, W], voxel `spacing` in mm along the same axes),
    /// the largest over the scales; 0 where `mask` is false or the image is not a bright blob there.
    ///
    /// Computed on the box around the mask widened by the largest kernel's radius, not the whole volume: the
    /// mask (the head's interior, vessel-bright) leaves out the skull, the scalp and the air around them,
    /// and every pass costs in proportion to the voxels it sweeps. The measured voxels get the same numbers as over the whole volume, bit for bit: each reads
    /// samples within a radius along each axis, all inside the box, and where the box meets the volume's face
    /// it mirrors there as before.
    public func measure(_ image: [Float], shape: [Int], spacing: [Double], mask: [Bool]) -> [Float] {
        precondition(shape.count == 3 && image.count == shape.reduce(1, *) && mask.count == image.count && spacing.count == 3)
        guard let box = box(around: mask, shape: shape, spacing: spacing) else { return [Float](repeating: 0, count: image.count) }
        if box.shape == shape { return measureWholeVolume(image, shape: shape, spacing: spacing, mask: mask) }
        let inBox = measureWholeVolume(box.cut(image, from: shape), shape: box.shape, spacing: spacing, mask: box.cut(mask, from: shape))
        var out = [Float](repeating: 0, count: image.count)
        box.paste(inBox, into: &out, shape: shape)
        return out
    }

    /// The box the filter sweeps for `mask`: around its true voxels, widened by the largest kernel's
    /// radius; nil when nothing is true.
    func box(around mask: [Bool], shape: [Int], spacing: [Double]) -> Box? {
        Self.box(around: mask, shape: shape, margin: (0..<3).map { axis in
            scalesMM.map { Self.kernelRadius(sigma: $0 / spacing[axis]) }.max() ?? 0
        })
    }

    /// A box of voxels: its first corner and its shape, both [D, H, W].
    struct Box: Equatable {
        var start: [Int]
        var shape: [Int]

        /// `values` (of the volume of `volume` shape) inside the box, row by row.
        func cut<T>(_ values: [T], from volume: [Int]) -> [T] {
            var out: [T] = []
            out.reserveCapacity(shape.reduce(1, *))
            for k in 0..<shape[0] { for j in 0..<shape[1] {
                let row = ((start[0] + k) * volume[1] + start[1] + j) * volume[2] + start[2]
                out.append(contentsOf: values[row..<(row + shape[2])])
            } }
            return out
        }

        /// The flat index in a volume of shape `volume` of the box's voxel at flat index `index`.
        func volumeIndex(_ index: Int, of volume: [Int]) -> Int {
            let (k, j, i) = (index / (shape[1] * shape[2]), index / shape[2] % shape[1], index % shape[2])
            return ((start[0] + k) * volume[1] + start[1] + j) * volume[2] + start[2] + i
        }

        /// Writes `values` (the box's, row by row) to their places in `volume`.
        func paste<T>(_ values: [T], into volume: inout [T], shape full: [Int]) {
            for k in 0..<shape[0] { for j in 0..<shape[1] {
                let from = (k * shape[1] + j) * shape[2]
                let row = ((start[0] + k) * full[1] + start[1] + j) * full[2] + start[2]
                volume.replaceSubrange(row..<(row + shape[2]), with: values[from..<(from + shape[2])])
            } }
        }
    }

    /// The smallest box holding every true voxel of `mask`, widened by `margin` voxels per axis and cut at
    /// the volume's faces; nil when nothing is true.
    static func box(around mask: [Bool], shape: [Int], margin: [Int]) -> Box? {
        var low = shape, high = [-1, -1, -1]
        let (h, w) = (shape[1], shape[2])
        for v in mask.indices where mask[v] {
            let (k, j, i) = (v / (h * w), v / w % h, v % w)
            (low[0], high[0]) = (min(low[0], k), max(high[0], k))
            (low[1], high[1]) = (min(low[1], j), max(high[1], j))
            (low[2], high[2]) = (min(low[2], i), max(high[2], i))
        }
        guard high[0] >= 0 else { return nil }
        let start = (0..<3).map { max(0, low[$0] - margin[$0]) }
        let end = (0..<3).map { min(shape[$0] - 1, high[$0] + margin[$0]) }
        return Box(start: start, shape: (0..<3).map { end[$0] - start[$0] + 1 })
    }

    /// The measure computed over every voxel of the volume (the passes sweep all of it).
    func measureWholeVolume(_ image: [Float], shape: [Int], spacing: [Double], mask: [Bool]) -> [Float] {
        let inside = mask.indices.filter { mask[$0] }
        var best = [Float](repeating: 0, count: image.count)
        for s in scalesMM { raise(&best, toScale: s, image, shape: shape, spacing: spacing, inside: inside) }
        return best
    }

    /// Raises `out` (one value per voxel of the volume) to the measure at scale `s` (mm) at each voxel of
    /// `inside` (flat indices) where it is larger; a map of zeros becomes that scale's measure alone.
    func raise(_ out: inout [Float], toScale s: Double, _ image: [Float], shape: [Int], spacing: [Double], inside: [Int]) {
        let sigma = spacing.map { s / $0 }
        // Six second derivatives from fifteen one-dimensional passes (along D with orders 0, 1, 2, then H,
        // then W), each kept only at the measured voxels as soon as it is made, so that at most four
        // volume-sized arrays live at once (fifteen would be ≈ 4.7 GB for a 300×512×512 series).
        func pass(_ x: [Float], _ axis: Int, _ order: Int) -> [Float] {
            Self.derivative(x, shape: shape, axis: axis, sigma: sigma[axis], order: order)
        }
        func kept(_ x: [Float]) -> [Float] { inside.map { x[$0] } }
        let (hdd, hhh, hww, hdh, hdw, hhw): ([Float], [Float], [Float], [Float], [Float], [Float])
        do {
            let alongD = pass(image, 0, 0)
            hww = kept(pass(pass(alongD, 1, 0), 2, 2))
            hhw = kept(pass(pass(alongD, 1, 1), 2, 1))
            hhh = kept(pass(pass(alongD, 1, 2), 2, 0))
        }
        do {
            let alongD = pass(image, 0, 1)
            hdw = kept(pass(pass(alongD, 1, 0), 2, 1))
            hdh = kept(pass(pass(alongD, 1, 1), 2, 0))
        }
        hdd = kept(pass(pass(pass(image, 0, 2), 1, 0), 2, 0))
        let (sd, sh, sw) = (spacing[0], spacing[1], spacing[2])
        let scale2 = s * s
        out.withUnsafeMutableBufferPointer { out in
            let chunk = max(1, (inside.count + 63) / 64)
            DispatchQueue.concurrentPerform(iterations: (inside.count + chunk - 1) / chunk) { c in
                for n in (c * chunk)..<min(inside.count, (c + 1) * chunk) {
                    let (low, high) = Self.extremeEigenvalues(
                        Double(hdd[n]) / (sd * sd), Double(hhh[n]) / (sh * sh), Double(hww[n]) / (sw * sw),
                        Double(hdh[n]) / (sd * sh), Double(hdw[n]) / (sd * sw), Double(hhw[n]) / (sh * sw))
                    guard high < 0 else { continue }
                    let m = Float(scale2 * high * high / max(-low, 1e-6))
                    let v = inside[n]
                    if m > out[v] { out[v] = m }
                }
            }
        }
    }

    /// How many samples each side of the centre scipy's kernel at `sigma` voxels reaches: ⌊4σ + ½⌋.
    static func kernelRadius(sigma: Double) -> Int { Int(4 * sigma + 0.5) }

    /// scipy.ndimage's Gaussian kernel of derivative `order` (0, 1 or 2) at `sigma` voxels, radius
    /// ⌊4σ + ½⌋, as a convolution kernel indexed from −radius.
    public static func kernel(sigma: Double, order: Int) -> [Double] {
        let radius = kernelRadius(sigma: sigma)
        let s2 = sigma * sigma
        let phi = (-radius...radius).map { x in exp(-0.5 * Double(x * x) / s2) }
        let total = phi.reduce(0, +)
        return zip(-radius...radius, phi).map { x, p in
            let g = p / total
            switch order {
            case 0: return g
            case 1: return -Double(x) / s2 * g
            default: return (Double(x * x) / (s2 * s2) - 1 / s2) * g
            }
        }
    }

    /// The Gaussian derivative of `x` along `axis`, with mirrored edges (d c b a | a b c d | d c b a).
    public static func derivative(_ x: [Float], shape: [Int], axis: Int, sigma: Double, order: Int) -> [Float] {
        let k = kernel(sigma: sigma, order: order).map(Float.init)
        let radius = k.count / 2
        let n = shape[axis]
        let stride = shape[(axis + 1)...].reduce(1, *)
        let outer = shape[..<axis].reduce(1, *)
        var out = [Float](repeating: 0, count: x.count)
        x.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                k.withUnsafeBufferPointer { k in
                    guard let src = src.baseAddress, let dst = dst.baseAddress, let k = k.baseAddress else { return }
                    if stride > 1 {
                        // Whole rows at a time: each output row is a weighted sum of contiguous input rows,
                        // which keeps the reads sequential (a strided walk along the axis would miss the cache).
                        DispatchQueue.concurrentPerform(iterations: outer * n) { job in
                            let (o, t) = (job / n, job % n)
                            let row = dst + (o * n + t) * stride
                            for m in 0..<(2 * radius + 1) {
                                // Convolution: the kernel's x (m − radius) multiplies the sample at t − x.
                                let w = k[m], from = src + (o * n + mirrored(t + radius - m, n)) * stride
                                axpy(w, from, row, stride)
                            }
                        }
                        return
                    }
                    let chunks = min(outer, 64)
                    DispatchQueue.concurrentPerform(iterations: chunks) { c in
                        var line = [Float](repeating: 0, count: n + 2 * radius)
                        line.withUnsafeMutableBufferPointer { line in
                            guard let padded = line.baseAddress else { return }
                            for o in (outer * c / chunks)..<(outer * (c + 1) / chunks) {
                                let base = o * n
                                for u in 0..<radius {
                                    padded[u] = src[base + mirrored(u - radius, n)]
                                    padded[n + radius + u] = src[base + mirrored(n + u, n)]
                                }
                                (padded + radius).update(from: src + base, count: n)
                                // Tap by tap over the whole line (a sum per output would not vectorise).
                                for m in 0..<(2 * radius + 1) { axpy(k[m], padded + 2 * radius - m, dst + base, n) }
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    /// y[0..<count] += w · x[0..<count], eight lanes at a time.
    @inline(__always)
    static func axpy(_ w: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ count: Int) {
        var e = 0
        let lanes = SIMD8<Float>(repeating: w)
        while e + 8 <= count {
            let sum = UnsafeRawPointer(y + e).loadUnaligned(as: SIMD8<Float>.self) + lanes * UnsafeRawPointer(x + e).loadUnaligned(as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(y + e).storeBytes(of: sum, as: SIMD8<Float>.self)
            e += 8
        }
        while e < count {
            y[e] += w * x[e]
            e += 1
        }
    }

    /// Index `t` folded into 0..<n by mirroring about the edges (scipy's "reflect").
    static func mirrored(_ t: Int, _ n: Int) -> Int {
        guard n > 1 else { return 0 }
        var t = t
        let period = 2 * n
        t = ((t % period) + period) % period
        return t < n ? t : period - 1 - t
    }

    /// The smallest and largest eigenvalues of the symmetric matrix [[a, d, e], [d, b, f], [e, f, c]]
    /// (the trigonometric closed form).
    public static func extremeEigenvalues(_ a: Double, _ b: Double, _ c: Double, _ d: Double, _ e: Double, _ f: Double) -> (Double, Double) {
        let offDiagonal = d * d + e * e + f * f
        let q = (a + b + c) / 3
        let p2 = (a - q) * (a - q) + (b - q) * (b - q) + (c - q) * (c - q) + 2 * offDiagonal
        guard p2 > 1e-30 * max(q * q, 1e-300) else { return (q, q) }
        let p = (p2 / 6).squareRoot()
        let (ba, bb, bc, bd, be, bf) = ((a - q) / p, (b - q) / p, (c - q) / p, d / p, e / p, f / p)
        let det = ba * (bb * bc - bf * bf) - bd * (bd * bc - bf * be) + be * (bd * bf - bb * be)
        let phi = acos(min(1, max(-1, det / 2))) / 3
        let largest = q + 2 * p * cos(phi)
        let smallest = q + 2 * p * cos(phi + 2 * Double.pi / 3)
        return (smallest, largest)
    }

    /// Local maxima of `values` above zero, strongest first: voxels no smaller than any other within
    /// `reach` voxels along each axis (scipy's maximum_filter of size 2·reach + 1).
    public static func maxima(_ values: [Float], shape: [Int], reach: [Int]) -> [(index: Int, value: Float)] {
        let (d, h, w) = (shape[0], shape[1], shape[2])
        var found: [(index: Int, value: Float)] = []
        let lock = NSLock()
        DispatchQueue.concurrentPerform(iterations: d) { k in
            var mine: [(index: Int, value: Float)] = []
            for j in 0..<h { for i in 0..<w {
                let v = values[(k * h + j) * w + i]
                guard v > 0 else { continue }
                var peak = true
                search: for kk in max(0, k - reach[0])...min(d - 1, k + reach[0]) {
                    for jj in max(0, j - reach[1])...min(h - 1, j + reach[1]) {
                        for ii in max(0, i - reach[2])...min(w - 1, i + reach[2]) where values[(kk * h + jj) * w + ii] > v {
                            peak = false
                            break search
                        }
                    }
                }
                if peak { mine.append(((k * h + j) * w + i, v)) }
            } }
            lock.lock()
            found += mine
            lock.unlock()
        }
        return found.sorted { $0.value != $1.value ? $0.value > $1.value : $0.index < $1.index }
    }

    // MARK: Where to look, and what is bright

    /// The voxels of `volume` the filter may look at, without knowing where the skull is: the head's
    /// foreground (above a tenth of the way from the 1st to the 99th percentile), its largest 6-connected
    /// piece with its holes filled, less a shell `depthMM` deep. Without it the skull's edges and the
    /// scalp outrank every aneurysm (RESULTS.md, stop 25); 16 mm keeps them beyond the largest scale's reach.
    public static func headInterior(_ volume: Volume, depthMM: Double = 16) -> [Bool] {
        let shape = [volume.shape.depth, volume.shape.height, volume.shape.width]
        let bounds = percentiles(volume.voxels, [1, 99])
        let (low, high) = (bounds[0], bounds[1])
        let threshold = low + 0.1 * (high - low)
        let foreground = volume.voxels.map { Double($0) > threshold }
        var head = largestComponent(foreground, shape: shape)
        fillHoles(&head, shape: shape)
        let spacing = [volume.geometry.spacing.z, volume.geometry.spacing.y, volume.geometry.spacing.x]
        let squared = squaredDistanceToBackground(head, shape: shape, spacing: spacing)
        return squared.map { $0 > depthMM * depthMM }
    }

    /// numpy's default percentiles (linear between the two nearest ranks) of `values`, one per `q` (0–100),
    /// with 0 for no values. Only the ranks they need are put in place (quickselect), not the whole array:
    /// sorting every voxel took 13 % of `willis candidates`' time on training series (`perf`, RESULTS.md stop 40).
    static func percentiles(_ values: [Float], _ qs: [Double]) -> [Double] {
        guard let last = values.indices.last else { return qs.map { _ in 0 } }
        let ranks = qs.map { q -> (below: Int, above: Int, fraction: Double) in
            let at = q / 100 * Double(last)
            let below = min(max(Int(at.rounded(.down)), 0), last)
            return (below, min(below + 1, last), at - Double(below))
        }
        var work = values
        var placed: [Int: Float] = [:]
        work.withUnsafeMutableBufferPointer { a in
            // Ranks in ascending order: each selection leaves everything at or above its rank from there up,
            // so the next one searches only that part.
            var from = 0
            for rank in Set(ranks.flatMap { [$0.below, $0.above] }).sorted() {
                select(a, rank, from: from, to: last)
                placed[rank] = a[rank]
                from = rank
            }
        }
        return ranks.map { r in
            let (low, high) = (Double(placed[r.below] ?? 0), Double(placed[r.above] ?? 0))
            return low + (high - low) * r.fraction
        }
    }

    /// Rearranges `a[from...to]` so that `a[rank]` holds the value a sort would put there, nothing above it
    /// is smaller and nothing below larger (Hoare's partition around a median of three). Values that do not
    /// compare (NaN) do not stop it: each partition still shrinks the range.
    static func select(_ a: UnsafeMutableBufferPointer<Float>, _ rank: Int, from: Int, to: Int) {
        var (low, high) = (from, to)
        while high > low {
            let mid = low + (high - low) / 2
            if a[mid] < a[low] { a.swapAt(mid, low) }
            if a[high] < a[low] { a.swapAt(high, low) }
            if a[high] < a[mid] { a.swapAt(high, mid) }
            let pivot = a[mid]
            var (i, j) = (low, high)
            while i <= j {
                while a[i] < pivot { i += 1 }
                while pivot < a[j] { j -= 1 }
                if i <= j {
                    a.swapAt(i, j)
                    i += 1
                    j -= 1
                }
            }
            // Now a[low...j] ≤ pivot ≤ a[i...high], and anything between equals the pivot.
            if rank <= j { high = j } else if rank >= i { low = i } else { return }
        }
    }

    /// The six face neighbours of flat index `v` in `shape`.
    static func neighbours(_ v: Int, _ shape: [Int], _ body: (Int) -> Void) {
        let (h, w) = (shape[1], shape[2])
        let (k, j, i) = (v / (h * w), v / w % h, v % w)
        if k > 0 { body(v - h * w) }
        if k + 1 < shape[0] { body(v + h * w) }
        if j > 0 { body(v - w) }
        if j + 1 < h { body(v + w) }
        if i > 0 { body(v - 1) }
        if i + 1 < w { body(v + 1) }
    }

    /// Grows `queue` breadth first through face neighbours, appending each that `claim` takes (it marks
    /// what it takes, so nothing joins twice).
    static func flood(_ queue: inout [Int], shape: [Int], claim: (Int) -> Bool) {
        var head = 0
        while head < queue.count {
            let v = queue[head]
            head += 1
            neighbours(v, shape) { u in
                if claim(u) { queue.append(u) }
            }
        }
    }

    /// The largest 6-connected piece of `mask` (scipy.ndimage.label's default structure).
    static func largestComponent(_ mask: [Bool], shape: [Int]) -> [Bool] {
        var label = [Int32](repeating: 0, count: mask.count)
        var (best, bestSize, next): (Int32, Int, Int32) = (0, 0, 0)
        var queue: [Int] = []
        for start in mask.indices where mask[start] && label[start] == 0 {
            next += 1
            label[start] = next
            queue.removeAll(keepingCapacity: true)
            queue.append(start)
            flood(&queue, shape: shape) { u in
                guard mask[u] && label[u] == 0 else { return false }
                label[u] = next
                return true
            }
            if queue.count > bestSize { (best, bestSize) = (next, queue.count) }
        }
        return label.map { $0 == best && best != 0 }
    }

    /// Fills the background pieces that do not reach the array's faces (scipy's binary_fill_holes).
    static func fillHoles(_ mask: inout [Bool], shape: [Int]) {
        var outside = [Bool](repeating: false, count: mask.count)
        var queue: [Int] = []
        let (d, h, w) = (shape[0], shape[1], shape[2])
        for v in mask.indices where !mask[v] {
            let (k, j, i) = (v / (h * w), v / w % h, v % w)
            if k == 0 || k == d - 1 || j == 0 || j == h - 1 || i == 0 || i == w - 1 {
                outside[v] = true
                queue.append(v)
            }
        }
        flood(&queue, shape: shape) { u in
            guard !mask[u] && !outside[u] else { return false }
            outside[u] = true
            return true
        }
        for v in mask.indices where !outside[v] { mask[v] = true }
    }

    /// The squared distance in mm from each voxel of `mask` to the nearest voxel outside it (0 outside;
    /// voxels beyond the array's faces do not count, as in scipy's distance_transform_edt): exact, one axis
    /// at a time, by the lower envelope of parabolas (Felzenszwalb and Huttenlocher).
    public static func squaredDistanceToBackground(_ mask: [Bool], shape: [Int], spacing: [Double]) -> [Double] {
        var f = mask.map { $0 ? Double.infinity : 0 }
        for axis in 0..<3 {
            let n = shape[axis]
            let stride = shape[(axis + 1)...].reduce(1, *)
            let outer = shape[..<axis].reduce(1, *)
            let w2 = spacing[axis] * spacing[axis]
            f.withUnsafeMutableBufferPointer { f in
                DispatchQueue.concurrentPerform(iterations: outer * stride) { job in
                    let base = (job / stride) * n * stride + job % stride
                    var line = [Double](repeating: 0, count: n), out = [Double](repeating: 0, count: n)
                    for t in 0..<n { line[t] = f[base + t * stride] }
                    Self.envelope(line, &out, weight: w2)
                    for t in 0..<n { f[base + t * stride] = out[t] }
                }
            }
        }
        return f
    }

    /// out[x] = min over y of weight·(x − y)² + f[y], for f with finite and infinite entries.
    static func envelope(_ f: [Double], _ out: inout [Double], weight: Double) {
        let n = f.count
        var sites = [Int](), bounds = [Double]()
        sites.reserveCapacity(n)
        bounds.reserveCapacity(n + 1)
        for q in 0..<n where f[q].isFinite {
            // Where the parabola at q overtakes the last kept one.
            while let p = sites.last {
                let s = ((f[q] + weight * Double(q * q)) - (f[p] + weight * Double(p * p))) / (2 * weight * Double(q - p))
                if let b = bounds.last, s <= b { sites.removeLast(); bounds.removeLast() } else {
                    bounds.append(s)
                    break
                }
            }
            if sites.isEmpty { bounds.removeAll() }
            sites.append(q)
        }
        guard !sites.isEmpty else {
            for x in 0..<n { out[x] = .infinity }
            return
        }
        var at = 0
        for x in 0..<n {
            while at < bounds.count && bounds[at] < Double(x) { at += 1 }
            let p = sites[at]
            out[x] = weight * Double((x - p) * (x - p)) + f[p]
        }
    }

    /// How vessels show in a series, which sets the vessel-bright scale.
    public enum VesselContrast: String, Sendable, Equatable, Codable {
        /// CT in HU, contrast-filled vessels bright.
        case ct
        /// MR with bright vessels (MRA, T1 post-contrast).
        case brightMR
        /// MR with dark vessels: T2, whose flowing blood leaves voids.
        case darkMR

        /// Echo times at or above this (ms) make an MR image T2-weighted: T2 spin-echo series use about
        /// 80–120 ms and more, time-of-flight MRA and T1-weighted series (post-contrast included) stay
        /// below about 20 ms. A limit of the rule: short-echo spin-echo series (proton density, T1 spin
        /// echo before contrast) can show flow voids too and read as bright, and so would a T1
        /// post-contrast series acquired as spin echo rather than as a 3D gradient echo.
        public static let t2EchoTimeMS = 60.0

        /// From DICOM's Modality (which says only CT or MR), the echo time and the series description. An
        /// MR with an echo time is dark-vessel when it is T2-weighted by it; one without, when its
        /// description names T2. The echo time comes first because it is the acquisition itself, while
        /// descriptions are free text that differ by site (and may be empty, as in pydicom's MR_small.dcm,
        /// a T2-weighted spin echo). Also reads the RSNA tables' names (CTA, MRA, MRI T2, MRI T1post).
        public init(modality: String, seriesDescription: String? = nil, echoTimeMS: Double? = nil) {
            if modality.uppercased().hasPrefix("CT") {
                self = .ct
            } else if let te = echoTimeMS, te.isFinite {
                self = te >= Self.t2EchoTimeMS ? .darkMR : .brightMR
            } else {
                self = (modality + " " + (seriesDescription ?? "")).uppercased().contains("T2") ? .darkMR : .brightMR
            }
        }

        /// This reading and what it came from, for a reader to check ("dark (T2) from echo time 102 ms"),
        /// given the echo time the rule saw. Without one, bright is the default rather than something the
        /// description said, and the text says so.
        public func reading(echoTimeMS: Double?) -> String {
            let named = self == .darkMR ? "dark (T2)" : "bright"
            switch (self, echoTimeMS) {
            case (.ct, _): return "CT"
            case (_, let te?) where te.isFinite: return String(format: "\(named) from echo time %g ms", te)
            case (.darkMR, _): return "dark (T2) from the description"
            default: return "bright (no echo time, and the description does not name T2)"
            }
        }
    }

    /// `volume` on a scale where vessels are about 1 and the brain about 0: CT as (HU − 35) / 400; MR
    /// from the median of `region` to its 99.9th percentile; dark-vessel MR as 1 − value / that median.
    public static func vesselBright(_ volume: Volume, contrast: VesselContrast, region: [Bool]) -> [Float] {
        if contrast == .ct { return volume.voxels.map { ($0 - 35) / 400 } }
        let scale = percentiles(zip(volume.voxels, region).compactMap { $1 ? $0 : nil }, [50, 99.9])
        let brain = Float(scale[0])
        if contrast == .darkMR { return volume.voxels.map { 1 - $0 / max(brain, 1e-6) } }
        let top = Float(scale[1])
        return volume.voxels.map { ($0 - brain) / max(top - brain, 1e-6) }
    }

    /// The filter's strongest local maxima in `volume` (windows about 5 mm across), inside the head's
    /// interior and on vessel-bright voxels (above 0.25): patient positions (mm, LPS) and values.
    public func candidates(_ volume: Volume, contrast: VesselContrast, count: Int, depthMM: Double = 16) -> [(point: Vector3, value: Float)] {
        let shape = [volume.shape.depth, volume.shape.height, volume.shape.width]
        let spacing = [volume.geometry.spacing.z, volume.geometry.spacing.y, volume.geometry.spacing.x]
        let region = Self.headInterior(volume, depthMM: depthMM)
        let image = Self.vesselBright(volume, contrast: contrast, region: region)
        let mask = zip(image, region).map { $0 > 0.25 && $1 }
        let reach = spacing.map { Int((2.4 / $0).rounded(.up)) }
        let (h, w) = (shape[1], shape[2])
        return peaks(image, shape: shape, spacing: spacing, mask: mask, reach: reach, count: count).map { m in
            (volume.geometry.patient(i: Double(m.index % w), j: Double(m.index / w % h), k: Double(m.index / (h * w))), m.value)
        }
    }

    /// The `count` strongest peaks of the measure of `image` on `mask` as `peakSearch` reads them, with
    /// windows `reach` voxels each side: flat indices into `shape` and values, strongest first.
    func peaks(_ image: [Float], shape: [Int], spacing: [Double], mask: [Bool], reach: [Int], count: Int) -> [(index: Int, value: Float)] {
        switch peakSearch {
        case .acrossScales:
            return Array(Self.maxima(measure(image, shape: shape, spacing: spacing, mask: mask), shape: shape, reach: reach).prefix(count))
        case .eachScale:
            guard let box = box(around: mask, shape: shape, spacing: spacing) else { return [] }
            let (boxImage, boxMask) = (box.cut(image, from: shape), box.cut(mask, from: shape))
            let inside = boxMask.indices.filter { boxMask[$0] }
            var found: [(index: Int, value: Float)] = []
            for s in scalesMM {
                var values = [Float](repeating: 0, count: boxImage.count)
                raise(&values, toScale: s, boxImage, shape: box.shape, spacing: spacing, inside: inside)
                found += Self.maxima(values, shape: box.shape, reach: reach).map { (box.volumeIndex($0.index, of: shape), $0.value) }
            }
            found.sort { $0.value != $1.value ? $0.value > $1.value : $0.index < $1.index }
            let (h, w) = (shape[1], shape[2])
            func voxel(_ v: Int) -> (Int, Int, Int) { (v / (h * w), v / w % h, v % w) }
            var kept: [(index: Int, value: Float)] = []
            for peak in found where kept.count < count {
                let (k, j, i) = voxel(peak.index)
                let covered = kept.contains { other in
                    let (kk, jj, ii) = voxel(other.index)
                    return abs(kk - k) <= reach[0] && abs(jj - j) <= reach[1] && abs(ii - i) <= reach[2]
                }
                if !covered { kept.append(peak) }
            }
            return kept
        }
    }

    /// The candidates of `volume` as the nearest voxels (i, j, k) of the grid `grid` of `shape` (depth,
    /// height, width), strongest first; those outside the grid are left out, so fewer than `count` may come.
    public func candidates(_ volume: Volume, contrast: VesselContrast, count: Int, depthMM: Double = 16,
                           on grid: Geometry, shape: [Int]) -> [[Int]] {
        candidates(volume, contrast: contrast, count: count, depthMM: depthMM).compactMap { c in
            let v = grid.voxel(c.point)
            let voxel = [v.x, v.y, v.z].map { $0.isFinite && abs($0) < 1e9 ? Int($0.rounded()) : -1 }
            return isVoxel(voxel, inside: shape) ? voxel : nil
        }
    }
}
