import Dispatch
import Foundation
import VolumeCore

/// Reads DICOM series into volumes with true geometry.
///
/// Slices are grouped by SeriesInstanceUID, slices whose orientation or size
/// differs from the majority (localizers, scouts) are split off with a
/// warning, and the rest are sorted by ImagePositionPatient projected on the
/// slice normal — never by file name or InstanceNumber. Values are rescaled to
/// real units (HU for CT) per slice, in Float32.
public struct SeriesLoader: Sendable {
    public struct Options: Sendable {
        /// Refuse series whose voxels would take more than this many bytes, before allocating.
        public var maxVolumeBytes = 8 << 30
        /// Keep PatientName, PatientID and PatientBirthDate in the result.
        public var includePHI = false
        /// Relative spacing deviation above which slice spacing counts as non-uniform.
        public var spacingTolerance = 0.01
        public init(maxVolumeBytes: Int = 8 << 30, includePHI: Bool = false) {
            self.maxVolumeBytes = maxVolumeBytes
            self.includePHI = includePHI
        }
    }

    public var options: Options
    public init(options: Options = Options()) { self.options = options }

    /// DICOM files under `path` (a file, or a folder searched recursively), sorted by name.
    public static func files(at path: String) throws -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw DICOMError(.io("no such file or folder"), file: path)
        }
        guard isDirectory.boolValue else { return [path] }
        // The enumerator does not descend into a folder given as a symbolic link (a dataset assembled
        // from links), so walk the folder it points to.
        let folder = (try? FileManager.default.destinationOfSymbolicLink(atPath: path)) != nil
            ? URL(fileURLWithPath: path).resolvingSymlinksInPath().path : path
        guard let walker = FileManager.default.enumerator(atPath: folder) else { throw DICOMError(.io("cannot list folder"), file: path) }
        var files: [String] = []
        while let name = walker.nextObject() as? String {
            let full = (folder as NSString).appendingPathComponent(name)
            var dir: ObjCBool = false
            if FileManager.default.fileExists(atPath: full, isDirectory: &dir), !dir.boolValue, !name.hasPrefix("."),
               !(name as NSString).lastPathComponent.hasPrefix(".") {
                files.append(full)
            }
        }
        return files.sorted()
    }

    struct Header {
        var file: DICOMFile
        var frames: [FrameInfo]
    }

    /// Reads the headers of every file in parallel; unreadable files are returned as errors.
    func readHeaders(_ paths: [String]) -> ([Header], [DICOMError]) {
        var results = [Result<Header, DICOMError>?](repeating: nil, count: paths.count)
        results.withUnsafeMutableBufferPointer { out in
            DispatchQueue.concurrentPerform(iterations: paths.count) { i in
                do {
                    let f = try DICOMFile.read(paths[i], options: ReadOptions(headerOnly: true))
                    out[i] = .success(Header(file: f, frames: FrameInfo.frames(of: f.dataSet, file: paths[i])))
                } catch let e as DICOMError {
                    out[i] = .failure(e)
                } catch {
                    out[i] = .failure(DICOMError(.io("\(error)"), file: paths[i]))
                }
            }
        }
        var headers: [Header] = [], errors: [DICOMError] = []
        for r in results {
            switch r {
            case let .success(h)?: headers.append(h)
            case let .failure(e)?: errors.append(e)
            case nil: break
            }
        }
        return (headers, errors)
    }

    /// Objects whose pixels are not a slice of a scan: segmentations, reports, plans, presentation states.
    static let nonImageModalities: Set<String> = ["SEG", "SR", "RTPLAN", "RTSTRUCT", "KO", "PR", "REG", "DOC"]

    static func isVolumeSlice(_ h: Header) -> Bool {
        let set = h.file.dataSet
        guard set.contains(.pixelData) || set.contains(.floatPixelData) else { return false }
        return !nonImageModalities.contains(set.string(.modality) ?? "")
    }

    /// Reads the one image series under `path` (a folder of slices or one multi-frame file).
    /// A folder holding several series is an error naming them; pick one with `seriesInstanceUID`.
    public func load(_ path: String, seriesInstanceUID: String? = nil) throws -> Series {
        let (headers, errors) = readHeaders(try Self.files(at: path))
        let images = headers.filter(Self.isVolumeSlice)
        guard !images.isEmpty else {
            if let first = errors.first { throw first }
            let kinds = Set(headers.compactMap { $0.file.dataSet.string(.modality) }).sorted()
            throw DICOMError(.notAnImage(headers.isEmpty ? "no DICOM files" : "no image objects (modalities \(kinds.joined(separator: ", ")))"),
                             file: path)
        }
        var groups: [String: [Header]] = [:]
        for h in images { groups[h.file.dataSet.string(.seriesInstanceUID) ?? "", default: []].append(h) }
        let chosen: [Header]
        if let uid = seriesInstanceUID {
            guard let g = groups[uid] else { throw DICOMError(.malformed("no series \(uid) here"), file: path) }
            chosen = g
        } else {
            guard groups.count == 1, let g = groups.first?.value else {
                throw DICOMError(.malformed("\(groups.count) series mixed in one folder: \(groups.keys.sorted().joined(separator: ", "))"),
                                 file: path)
            }
            chosen = g
        }
        var warnings = errors.map { "skipped unreadable file: \($0)" }
        let plan = try plan(chosen, warnings: &warnings, path: path)
        return try decode(plan, headers: chosen, warnings: warnings, path: path)
    }

    /// Geometry and order of each series from its headers alone (what `willis inspect` shows),
    /// and the files that could not be read as DICOM.
    public func inspect(_ path: String) throws -> (series: [SeriesSummary], unreadable: [DICOMError]) {
        let (headers, errors) = readHeaders(try Self.files(at: path))
        var groups: [String: [Header]] = [:]
        for h in headers where Self.isVolumeSlice(h) {
            groups[h.file.dataSet.string(.seriesInstanceUID) ?? "", default: []].append(h)
        }
        let summaries: [SeriesSummary] = groups.keys.sorted().compactMap { uid in
            guard let hs = groups[uid] else { return nil }
            var warnings: [String] = []
            let header = SeriesHeader(seriesInstanceUID: uid, modality: hs[0].file.dataSet.string(.modality) ?? "",
                                      files: hs.map(\.file.path).sorted(), frameCount: hs.reduce(0) { $0 + $1.frames.count },
                                      rows: hs[0].file.dataSet.int(.rows) ?? 0, columns: hs[0].file.dataSet.int(.columns) ?? 0,
                                      transferSyntaxes: Set(hs.map(\.file.transferSyntax.uid)),
                                      seriesDescription: hs[0].file.dataSet.string(.seriesDescription), echoTimeMS: Self.echoTime(hs[0].file.dataSet))
            do {
                let p = try plan(hs, warnings: &warnings, path: path)
                return SeriesSummary(header: header, geometry: p.geometry, sliceCount: p.sorted.count, warnings: warnings)
            } catch {
                return SeriesSummary(header: header, geometry: nil, sliceCount: 0, warnings: warnings + ["\(error)"])
            }
        }
        return (summaries, errors)
    }

    struct Plan {
        var sorted: [(header: Int, info: FrameInfo)]
        var geometry: Geometry
        var rows: Int
        var columns: Int
        var tilt: Double
        var sliceThickness: Double?
    }

    func plan(_ headers: [Header], warnings: inout [String], path: String) throws -> Plan {
        // Every frame of every file, each keeping its file.
        var frames: [(header: Int, info: FrameInfo)] = []
        for (i, h) in headers.enumerated() { frames += h.frames.map { (i, $0) } }

        // Majority geometry; others (localizers, scouts) are split off.
        func key(_ f: FrameInfo) -> String {
            let o = (f.orientation ?? []).map { String(format: "%.3f", $0) }.joined(separator: ",")
            return "\(f.rows)x\(f.columns)|\(o)"
        }
        var counts: [String: Int] = [:]
        for f in frames { counts[key(f.info), default: 0] += 1 }
        guard let majority = counts.max(by: { ($0.value, $1.key) < ($1.value, $0.key) })?.key else {
            throw DICOMError(.notAnImage("no frames"), file: path)
        }
        let kept = frames.filter { key($0.info) == majority }
        if kept.count * 2 <= frames.count && counts.count > 1 {
            // No majority: this is not a series with a few scouts but slices of different images.
            let summary = counts.map { k, n in "\(n) of \(k.split(separator: "|").first ?? "")" }.sorted().joined(separator: ", ")
            throw DICOMError(.malformed("mixed slice sizes or orientations with no majority: \(summary)"), file: path)
        }
        if kept.count < frames.count {
            warnings.append("split off \(frames.count - kept.count) slice(s) whose size or orientation differs from the majority (localizers or scouts)")
        }
        let first = kept[0].info
        let rows = first.rows, columns = first.columns
        let iop = first.orientation ?? [1, 0, 0, 0, 1, 0]
        if first.orientation == nil { warnings.append("no ImageOrientationPatient: assuming axial") }
        let columnDirection = Vector3(iop[0], iop[1], iop[2]).normalized
        let rowDirection = Vector3(iop[3], iop[4], iop[5]).normalized
        let rawNormal = columnDirection.cross(rowDirection)
        let normal = rawNormal.normalized
        if abs(columnDirection.dot(rowDirection)) > 1e-3 {
            warnings.append("ImageOrientationPatient directions are not orthogonal (cosine \(columnDirection.dot(rowDirection)))")
        }
        guard rawNormal.length > 0.5 else {
            throw DICOMError(.malformed("ImageOrientationPatient \(iop) is not two orthogonal directions"), file: path, tag: .imageOrientationPatient)
        }

        // Sort by position along the normal.
        let missingPositions = kept.filter { $0.info.position == nil }.count
        let oneFile = Set(kept.map(\.header)).count == 1
        if missingPositions > 0 && kept.count > 1 && !(oneFile && missingPositions == kept.count) {
            throw DICOMError(.malformed("\(missingPositions) slice(s) without ImagePositionPatient: cannot order the series"),
                             file: path, tag: .imagePositionPatient)
        }
        if missingPositions > 0 && kept.count > 1 {
            // One multi-frame object without plane positions: its frames are its order.
            warnings.append("no ImagePositionPatient: frames kept in file order, \(first.sliceThickness.map { "\($0)" } ?? "1") mm apart, origin unknown")
        }
        var sorted = missingPositions > 0 ? kept.sorted { $0.info.frameIndex < $1.info.frameIndex } : kept.sorted {
            let a = ($0.info.position ?? .zero).dot(normal), b = ($1.info.position ?? .zero).dot(normal)
            return a != b ? a < b : ($0.info.file, $0.info.frameIndex) < ($1.info.file, $1.info.frameIndex)
        }
        var sliceSpacing = first.sliceThickness ?? 1
        var sliceDirection = normal
        var tilt = 0.0
        if sorted.count > 1 && missingPositions == 0 {
            // A second slice at a position already filled would break the spacing: keep the first
            // (by file name and frame) and report the rest.
            let all = sorted.map { ($0.info.position ?? .zero).dot(normal) }
            if zip(all.dropFirst(), all).allSatisfy({ abs($0 - $1) < 1e-4 }) {
                throw DICOMError(.malformed("all \(sorted.count) slices are at one position"), file: path, tag: .imagePositionPatient)
            }
            let unique = sorted.indices.filter { $0 == 0 || abs(all[$0] - all[$0 - 1]) >= 1e-4 }
            if unique.count < sorted.count {
                warnings.append("dropped \(sorted.count - unique.count) duplicate slice position(s): "
                                + sorted.indices.filter { !unique.contains($0) }.map { sorted[$0].info.sopInstanceUID }.joined(separator: ", "))
                sorted = unique.map { sorted[$0] }
            }
            let projections = sorted.map { ($0.info.position ?? .zero).dot(normal) }
            let gaps = zip(projections.dropFirst(), projections).map { $0 - $1 }
            let positive = gaps.sorted()
            let median = positive[positive.count / 2]
            sliceSpacing = median
            let uneven = positive.filter { abs($0 - median) > options.spacingTolerance * median }
            if !uneven.isEmpty {
                let missing = positive.filter { $0 > 1.5 * median }.count
                warnings.append("non-uniform slice spacing: \(uneven.count) gap(s) differ from \(String(format: "%.4g", median)) mm"
                                + (missing > 0 ? " (\(missing) look like missing slices)" : ""))
            }
            // The true slice direction comes from the positions; it leaves the normal under gantry tilt.
            if let p0 = sorted.first?.info.position, let p1 = sorted.last?.info.position {
                let along = (p1 - p0).normalized
                sliceDirection = along
                let cosine = max(-1, min(1, along.dot(normal)))
                tilt = acos(cosine) * 180 / .pi
                if tilt > 0.01 { warnings.append(String(format: "gantry tilt of %.2f° (slices are sheared; the affine keeps it)", tilt)) }
                sliceSpacing = (p1 - p0).length / Double(sorted.count - 1)
            }
        }
        let ps = first.pixelSpacing ?? [1, 1]
        if first.pixelSpacing == nil { warnings.append("no PixelSpacing: assuming 1 mm") }
        let geometry = Geometry(origin: sorted[0].info.position ?? .zero, spacing: Vector3(ps[1], ps[0], sliceSpacing),
                                columnDirection: columnDirection, rowDirection: rowDirection, sliceDirection: sliceDirection)
        return Plan(sorted: sorted, geometry: geometry, rows: rows, columns: columns, tilt: tilt, sliceThickness: first.sliceThickness)
    }

    func decode(_ plan: Plan, headers: [Header], warnings: [String], path: String) throws -> Series {
        var warnings = warnings
        let (sorted, rows, columns, geometry) = (plan.sorted, plan.rows, plan.columns, plan.geometry)

        // Pixels: decode each file once, in parallel, straight into the volume.
        let depth = sorted.count
        let (voxels, overflow) = depth.multipliedReportingOverflow(by: rows * columns)
        guard !overflow, voxels * 4 <= options.maxVolumeBytes else {
            throw DICOMError(.tooLarge(bytes: overflow ? Int.max : voxels * 4, limit: options.maxVolumeBytes), file: path)
        }
        for s in sorted where !(s.info.slope.isFinite && s.info.intercept.isFinite) {
            throw DICOMError(.malformed("rescale slope/intercept \(s.info.slope)/\(s.info.intercept) is not finite"),
                             file: s.info.file, tag: .rescaleSlope)
        }
        var slicesOfHeader: [Int: [(k: Int, frame: Int, slope: Float, intercept: Float)]] = [:]
        for (k, s) in sorted.enumerated() {
            slicesOfHeader[s.header, default: []].append((k, s.info.frameIndex, Float(s.info.slope), Float(s.info.intercept)))
        }
        let jobs = slicesOfHeader.sorted { $0.key < $1.key }
        var failures = [DICOMError?](repeating: nil, count: jobs.count)
        let sliceSize = rows * columns
        // Every voxel is written below, so the array starts uninitialised (no memset pass);
        // fresh pages come zeroed from the kernel, faster in 2 MB pages than in 4 kB ones.
        let volume = [Float](unsafeUninitializedCapacity: voxels) { out, initialized in
            LargeAllocation.adviseHugePages(UnsafeMutableRawBufferPointer(out))
            failures.withUnsafeMutableBufferPointer { failed in
                DispatchQueue.concurrentPerform(iterations: jobs.count) { j in
                    let (h, slices) = jobs[j]
                    do {
                        // The header pass already mapped the file and knows where native pixels lie.
                        let file = headers[h].file
                        let limits = ReadOptions(maxPixelBytes: options.maxVolumeBytes)
                        if file.transferSyntax.isEncapsulated, slices.count > 1 {
                            // Decode a multi-frame compressed object once, not once per frame.
                            let pixels = try PixelDecoder.decode(DICOMFile.read(file.path, options: limits), options: limits)
                            guard pixels.rows == rows, pixels.columns == columns else {
                                throw DICOMError(.malformed("slice is \(pixels.rows)×\(pixels.columns), series is \(rows)×\(columns)"), file: file.path)
                            }
                            for s in slices {
                                guard s.frame < pixels.frames else { throw DICOMError(.malformed("frame \(s.frame) of \(pixels.frames)"), file: file.path) }
                                pixels.write(frame: s.frame, slope: s.slope, intercept: s.intercept,
                                             into: UnsafeMutableBufferPointer(rebasing: out[(s.k * sliceSize)..<((s.k + 1) * sliceSize)]))
                            }
                        } else {
                            for s in slices {
                                try PixelDecoder.writeFrame(file, frame: s.frame, slope: s.slope, intercept: s.intercept,
                                                            into: UnsafeMutableBufferPointer(rebasing: out[(s.k * sliceSize)..<((s.k + 1) * sliceSize)]),
                                                            options: limits)
                            }
                        }
                    } catch let e as DICOMError {
                        failed[j] = e
                    } catch {
                        failed[j] = DICOMError(.io("\(error)"), file: headers[h].file.path)
                    }
                }
            }
            // Float elements need no clean-up, so on failure the array is simply dropped below.
            initialized = voxels
        }
        if let failure = failures.compactMap({ $0 }).first { throw failure }
        // Integer pixels times a finite slope are finite; only float pixel data can hold NaN.
        if headers.contains(where: { $0.file.dataSet.contains(.floatPixelData) || $0.file.dataSet.contains(.doubleFloatPixelData) }) {
            let nonFinite = volume.lazy.filter { !$0.isFinite }.count
            if nonFinite > 0 { warnings.append("\(nonFinite) voxel(s) are NaN or infinite") }
        }

        let set = headers[sorted[0].header].file.dataSet
        var phi: [String: String]?
        if options.includePHI {
            phi = [:]
            for (name, tag) in [("PatientName", Tag.patientName), ("PatientID", .patientID), ("PatientBirthDate", .patientBirthDate)] {
                if let v = set.string(tag) { phi?[name] = v }
            }
        }
        return Series(
            volume: try Volume(shape: (depth, rows, columns), voxels: volume, geometry: geometry),
            seriesInstanceUID: set.string(.seriesInstanceUID) ?? "", modality: set.string(.modality) ?? "",
            transferSyntaxes: Array(Set(headers.map(\.file.transferSyntax))).sorted { $0.uid < $1.uid },
            slices: sorted.map { ($0.info.sopInstanceUID, $0.info.frameIndex) }, warnings: warnings, tiltDegrees: plan.tilt,
            sliceThickness: plan.sliceThickness, manufacturer: set.string(.manufacturer),
            seriesDescription: set.string(.seriesDescription), echoTimeMS: Self.echoTime(set), patientAge: set.string(.patientAge),
            patientSex: set.string(.patientSex), identifyingFields: phi)
    }

    /// The echo time of the data set `set` in ms (`Series.echoTimeMS`): EchoTime, else an enhanced MR's
    /// EffectiveEchoTime from the shared functional groups, else from the first frame's.
    public static func echoTime(_ set: DataSet) -> Double? {
        func usable(_ v: Double?) -> Double? { v.flatMap { $0.isFinite && $0 >= 0 ? $0 : nil } }
        if let te = usable(set.number(.echoTime)) { return te }
        let groups = set.sequence(.sharedFunctionalGroups).prefix(1) + set.sequence(.perFrameFunctionalGroups).prefix(1)
        for group in groups {
            if let te = usable(group.sequence(.mrEchoSequence).first?.number(.effectiveEchoTime)) { return te }
        }
        return nil
    }
}
