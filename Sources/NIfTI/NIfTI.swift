import AtomicFile
import Foundation
import Zlib
import VolumeCore

/// NIfTI-1 and NIfTI-2 images (.nii, .nii.gz), read and written.
/// Formats: the NIfTI-1 header (nifti1.h) and NIfTI-2 header (nifti2.h) as published by NITRC.
public enum NIfTI {
    public enum DataType: Int16, Sendable, CaseIterable {
        case uint8 = 2, int16 = 4, int32 = 8, float32 = 16, float64 = 64, int8 = 256, uint16 = 512, uint32 = 768, int64 = 1024
        public var byteSize: Int {
            switch self {
            case .uint8, .int8: return 1
            case .int16, .uint16: return 2
            case .int32, .uint32, .float32: return 4
            case .float64, .int64: return 8
            }
        }
    }

    /// A read image: its first 3D volume in patient space, and what the header said.
    public struct Image: Sendable {
        public var volume: Volume
        public var version: Int
        public var dataType: DataType
        /// Number of 3D volumes (dim[4]); `volume` holds the first.
        public var volumeCount: Int
        public var sformCode: Int
        public var qformCode: Int
        public var sclSlope: Double
        public var sclInter: Double
        /// voxel → RAS affine the header defines (sform if set, else qform, else pixdim).
        public var affineRAS: [[Double]]
    }

    public struct Error: Swift.Error, CustomStringConvertible, Equatable {
        public var path: String
        public var reason: String
        public var description: String { "\(path): \(reason)" }
    }

    // MARK: - Reading

    public static func read(_ path: String, maxBytes: Int = 8 << 30) throws -> Image {
        var data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            throw Error(path: path, reason: "cannot read: \(error.localizedDescription)")
        }
        if data.count >= 2, data[data.startIndex] == 0x1F, data[data.startIndex + 1] == 0x8B {
            data = try Gzip.decompress(data, path: path, maxBytes: maxBytes)
        }
        return try parse(data, path: path, maxBytes: maxBytes)
    }

    public static func parse(_ data: Data, path: String = "<memory>", maxBytes: Int = 8 << 30) throws -> Image {
        func fail(_ reason: String) -> Error { Error(path: path, reason: reason) }
        return try data.withUnsafeBytes { raw -> Image in
            guard raw.count >= 348 else { throw fail("file is \(raw.count) bytes, shorter than a NIfTI header") }
            let le348 = raw.loadUnaligned(as: Int32.self)
            let sizes: [(Int32, Int, Bool)] = [(348, 1, false), (540, 2, false), (Int32(348).byteSwapped, 1, true), (Int32(540).byteSwapped, 2, true)]
            guard let (_, version, swapped) = sizes.first(where: { $0.0 == le348 }) else {
                throw fail("not a NIfTI file (sizeof_hdr \(le348))")
            }
            guard version == 1 || raw.count >= 540 else { throw fail("truncated NIfTI-2 header") }
            func i16(_ o: Int) -> Int { let v = raw.loadUnaligned(fromByteOffset: o, as: Int16.self); return Int(swapped ? v.byteSwapped : v) }
            func i32(_ o: Int) -> Int { let v = raw.loadUnaligned(fromByteOffset: o, as: Int32.self); return Int(swapped ? v.byteSwapped : v) }
            func i64(_ o: Int) -> Int { let v = raw.loadUnaligned(fromByteOffset: o, as: Int64.self); return Int(swapped ? v.byteSwapped : v) }
            func f32(_ o: Int) -> Double {
                let v = raw.loadUnaligned(fromByteOffset: o, as: UInt32.self)
                return Double(Float(bitPattern: swapped ? v.byteSwapped : v))
            }
            func f64(_ o: Int) -> Double {
                let v = raw.loadUnaligned(fromByteOffset: o, as: UInt64.self)
                return Double(bitPattern: swapped ? v.byteSwapped : v)
            }
            let v1 = version == 1
            let dims = (0..<8).map { v1 ? i16(40 + 2 * $0) : i64(16 + 8 * $0) }
            let pixdim = (0..<8).map { v1 ? f32(76 + 4 * $0) : f64(104 + 8 * $0) }
            let code = v1 ? i16(70) : i16(12)
            guard let dataType = DataType(rawValue: Int16(truncatingIfNeeded: code)) else { throw fail("unsupported datatype \(code)") }
            let offsetValue = v1 ? f32(108) : Double(i64(168))
            guard offsetValue.isFinite, offsetValue >= 0, offsetValue < Double(raw.count) else {
                throw fail("vox_offset \(offsetValue) lies outside the \(raw.count)-byte file")
            }
            let voxOffset = Int(offsetValue)
            var slope = v1 ? f32(112) : f64(176)
            var inter = v1 ? f32(116) : f64(184)
            let qformCode = v1 ? i16(252) : i32(344)
            let sformCode = v1 ? i16(254) : i32(348)
            let quatern = v1 ? [f32(256), f32(260), f32(264), f32(268), f32(272), f32(276)]
                             : [f64(352), f64(360), f64(368), f64(376), f64(384), f64(392)]
            let srow = (0..<12).map { v1 ? f32(280 + 4 * $0) : f64(400 + 8 * $0) }
            guard (1...7).contains(dims[0]) else { throw fail("dim[0] = \(dims[0])") }
            let nx = max(1, dims[1]), ny = dims[0] >= 2 ? max(1, dims[2]) : 1, nz = dims[0] >= 3 ? max(1, dims[3]) : 1
            guard dims[1...].allSatisfy({ $0 < 1 << 31 }) else { throw fail("dimensions \(dims) out of range") }
            // Product of dims 4…7 (each < 2^31), saturating: only reported, never allocated.
            let nt = dims[0] >= 4 ? (4...dims[0]).reduce(1) { $0.multipliedReportingOverflow(by: max(1, dims[$1])).overflow ? Int.max : $0 * max(1, dims[$1]) } : 1
            let (count, o1) = nx.multipliedReportingOverflow(by: ny * nz)
            guard !o1, count * 4 <= maxBytes else { throw fail("volume of \(nx)×\(ny)×\(nz) exceeds the memory limit") }
            let bytes = count * dataType.byteSize
            guard voxOffset >= (v1 ? 348 : 540), voxOffset + bytes <= raw.count else {
                throw fail("voxel data (\(bytes) bytes at \(voxOffset)) runs past the end of the \(raw.count)-byte file")
            }
            if slope == 0 || !slope.isFinite { slope = 1; inter = 0 }  // slope 0 means unscaled (nifti1.h)
            if !inter.isFinite { inter = 0 }
            var voxels = [Float](repeating: 0, count: count)
            let src = UnsafeRawBufferPointer(rebasing: raw[voxOffset..<(voxOffset + bytes)])
            voxels.withUnsafeMutableBufferPointer { out in
                func convert<T>(_: T.Type, _ f: (T) -> Double) {
                    for i in 0..<count {
                        var v = src.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.size, as: T.self)
                        if swapped {
                            withUnsafeMutableBytes(of: &v) { b in
                                for k in 0..<(b.count / 2) { b.swapAt(k, b.count - 1 - k) }
                            }
                        }
                        out[i] = Float(f(v) * slope + inter)
                    }
                }
                switch dataType {
                case .uint8: convert(UInt8.self) { Double($0) }
                case .int8: convert(Int8.self) { Double($0) }
                case .int16: convert(Int16.self) { Double($0) }
                case .uint16: convert(UInt16.self) { Double($0) }
                case .int32: convert(Int32.self) { Double($0) }
                case .uint32: convert(UInt32.self) { Double($0) }
                case .int64: convert(Int64.self) { Double($0) }
                case .float32: convert(Float.self) { Double($0) }
                case .float64: convert(Double.self) { $0 }
                }
            }
            let affine: [[Double]]
            if sformCode > 0 {
                affine = [Array(srow[0..<4]), Array(srow[4..<8]), Array(srow[8..<12]), [0, 0, 0, 1]]
            } else if qformCode > 0 {
                affine = quaternionAffine(b: quatern[0], c: quatern[1], d: quatern[2], offset: Array(quatern[3..<6]),
                                          pixdim: pixdim)
            } else {
                affine = [[pixdim[1], 0, 0, 0], [0, pixdim[2], 0, 0], [0, 0, pixdim[3], 0], [0, 0, 0, 1]]
            }
            let volume = try Volume(shape: (nz, ny, nx), voxels: voxels, geometry: geometry(fromRAS: affine))
            return Image(volume: volume, version: version, dataType: dataType, volumeCount: nt, sformCode: sformCode,
                         qformCode: qformCode, sclSlope: slope, sclInter: inter, affineRAS: affine)
        }
    }

    /// The qform affine (nifti1.h, "METHOD 2").
    static func quaternionAffine(b: Double, c: Double, d: Double, offset: [Double], pixdim: [Double]) -> [[Double]] {
        var a = 1 - (b * b + c * c + d * d)
        var (b, c, d) = (b, c, d)
        if a < 1e-7 {
            let s = 1 / (b * b + c * c + d * d).squareRoot()
            (b, c, d) = (b * s, c * s, d * s)
            a = 0
        } else {
            a = a.squareRoot()
        }
        let qfac = pixdim[0] < 0 ? -1.0 : 1.0
        let (x, y, z) = (pixdim[1] > 0 ? pixdim[1] : 1, pixdim[2] > 0 ? pixdim[2] : 1, (pixdim[3] > 0 ? pixdim[3] : 1) * qfac)
        return [
            [(a * a + b * b - c * c - d * d) * x, 2 * (b * c - a * d) * y, 2 * (b * d + a * c) * z, offset[0]],
            [2 * (b * c + a * d) * x, (a * a + c * c - b * b - d * d) * y, 2 * (c * d - a * b) * z, offset[1]],
            [2 * (b * d - a * c) * x, 2 * (c * d + a * b) * y, (a * a + d * d - c * c - b * b) * z, offset[2]],
            [0, 0, 0, 1],
        ]
    }

    /// A Geometry from a voxel → RAS affine: columns give direction × spacing.
    public static func geometry(fromRAS a: [[Double]]) -> Geometry {
        // RAS → LPS: negate the first two rows.
        let col = { (j: Int) in Vector3(-a[0][j], -a[1][j], a[2][j]) }
        let c0 = col(0), c1 = col(1), c2 = col(2)
        func unit(_ v: Vector3, _ fallback: Vector3) -> Vector3 { v.length > 0 ? v.normalized : fallback }
        return Geometry(origin: Vector3(-a[0][3], -a[1][3], a[2][3]),
                        spacing: Vector3(c0.length > 0 ? c0.length : 1, c1.length > 0 ? c1.length : 1, c2.length > 0 ? c2.length : 1),
                        columnDirection: unit(c0, Vector3(-1, 0, 0)), rowDirection: unit(c1, Vector3(0, -1, 0)),
                        sliceDirection: unit(c2, Vector3(0, 0, 1)))
    }

    // MARK: - Writing

    /// Writes `volume` as NIfTI-1 (or -2); gzip when the path ends in `.gz`. The file is written
    /// to a temporary sibling and renamed into place.
    public static func write(_ volume: Volume, to path: String, dataType: DataType = .float32, version: Int = 1,
                             slope: Double = 1, intercept: Double = 0, description: String = "Willis") throws {
        guard version == 1 || version == 2 else { throw Error(path: path, reason: "NIfTI version must be 1 or 2") }
        var data = encode(volume, dataType: dataType, version: version, slope: slope, intercept: intercept, description: description)
        if path.hasSuffix(".gz") { data = try Gzip.compress(data, path: path) }
        do {
            try AtomicFile.write(data, to: path)
        } catch let e as AtomicFile.Error {
            throw Error(path: path, reason: "cannot write: \(e.reason)")
        }
    }

    public static func encode(_ volume: Volume, dataType: DataType = .float32, version: Int = 1, slope: Double = 1,
                              intercept: Double = 0, description: String = "Willis") -> Data {
        let v1 = version == 1
        let headerSize = v1 ? 348 : 540
        let offset = v1 ? 352 : 544
        let (nz, ny, nx) = volume.shape
        let count = nx * ny * nz
        var out = Data(count: offset + count * dataType.byteSize)
        let g = volume.geometry
        let a = g.affineRAS
        let q = quaternion(g)
        out.withUnsafeMutableBytes { raw in
            func put<T>(_ v: T, _ o: Int) { raw.storeBytes(of: v, toByteOffset: o, as: T.self) }
            put(Int32(headerSize), 0)
            let dims = [3, nx, ny, nz, 1, 1, 1, 1]
            let pixdim = [q.qfac, g.spacing.x, g.spacing.y, g.spacing.z, 1, 1, 1, 1]
            if v1 {
                for (i, d) in dims.enumerated() { put(Int16(d), 40 + 2 * i) }
                put(dataType.rawValue, 70)
                put(Int16(dataType.byteSize * 8), 72)
                for (i, p) in pixdim.enumerated() { put(Float(p), 76 + 4 * i) }
                put(Float(offset), 108)
                put(Float(slope), 112)
                put(Float(intercept), 116)
                put(UInt8(10), 123)  // xyzt_units: mm, seconds
                for (i, ch) in description.utf8.prefix(79).enumerated() { put(ch, 148 + i) }
                put(Int16(q.valid ? 1 : 0), 252)
                put(Int16(1), 254)
                for (i, v) in [q.b, q.c, q.d, a[0][3], a[1][3], a[2][3]].enumerated() { put(Float(v), 256 + 4 * i) }
                for r in 0..<3 { for c in 0..<4 { put(Float(a[r][c]), 280 + 16 * r + 4 * c) } }
                for (i, ch) in "n+1\0".utf8.enumerated() { put(ch, 344 + i) }
            } else {
                for (i, ch) in [0x6E, 0x2B, 0x32, 0x00, 0x0D, 0x0A, 0x1A, 0x0A].enumerated() { put(UInt8(ch), 4 + i) }
                put(dataType.rawValue, 12)
                put(Int16(dataType.byteSize * 8), 14)
                for (i, d) in dims.enumerated() { put(Int64(d), 16 + 8 * i) }
                for (i, p) in pixdim.enumerated() { put(p, 104 + 8 * i) }
                put(Int64(offset), 168)
                put(slope, 176)
                put(intercept, 184)
                for (i, ch) in description.utf8.prefix(79).enumerated() { put(ch, 240 + i) }
                put(Int32(q.valid ? 1 : 0), 344)
                put(Int32(1), 348)
                for (i, v) in [q.b, q.c, q.d, a[0][3], a[1][3], a[2][3]].enumerated() { put(v, 352 + 8 * i) }
                for r in 0..<3 { for c in 0..<4 { put(a[r][c], 400 + 32 * r + 8 * c) } }
                put(Int32(10), 500)
            }
            let s = slope == 0 ? 1 : slope
            volume.voxels.withUnsafeBufferPointer { src in
                func store<T>(_ make: (Double) -> T) {
                    for i in 0..<count { raw.storeBytes(of: make((Double(src[i]) - intercept) / s), toByteOffset: offset + i * MemoryLayout<T>.size, as: T.self) }
                }
                func integer<T: FixedWidthInteger>(_: T.Type) {
                    store { v -> T in
                        guard v.isFinite else { return 0 }
                        return T(max(Double(T.min), min(Double(T.max), v.rounded())))
                    }
                }
                switch dataType {
                case .float32: store { Float($0) }
                case .float64: store { $0 }
                case .uint8: integer(UInt8.self)
                case .int8: integer(Int8.self)
                case .int16: integer(Int16.self)
                case .uint16: integer(UInt16.self)
                case .int32: integer(Int32.self)
                case .uint32: integer(UInt32.self)
                case .int64: integer(Int64.self)
                }
            }
        }
        return out
    }

    /// The qform quaternion of a geometry (nifti1.h's mat44_to_quatern), when its
    /// directions are orthonormal; a sheared (gantry-tilted) geometry has none.
    static func quaternion(_ g: Geometry) -> (b: Double, c: Double, d: Double, qfac: Double, valid: Bool) {
        // Directions in RAS.
        var c0 = Vector3(-g.columnDirection.x, -g.columnDirection.y, g.columnDirection.z)
        var c1 = Vector3(-g.rowDirection.x, -g.rowDirection.y, g.rowDirection.z)
        var c2 = Vector3(-g.sliceDirection.x, -g.sliceDirection.y, g.sliceDirection.z)
        c0 = c0.normalized; c1 = c1.normalized; c2 = c2.normalized
        let orthonormal = abs(c0.dot(c1)) < 1e-4 && abs(c0.dot(c2)) < 1e-4 && abs(c1.dot(c2)) < 1e-4
        var qfac = 1.0
        if c0.dot(c1.cross(c2)) < 0 { qfac = -1; c2 = -c2 }
        let (r11, r12, r13) = (c0.x, c1.x, c2.x), (r21, r22, r23) = (c0.y, c1.y, c2.y), (r31, r32, r33) = (c0.z, c1.z, c2.z)
        var a = r11 + r22 + r33 + 1, b: Double, c: Double, d: Double
        if a > 0.5 {
            a = 0.5 * a.squareRoot()
            b = 0.25 * (r32 - r23) / a; c = 0.25 * (r13 - r31) / a; d = 0.25 * (r21 - r12) / a
        } else {
            let xd = 1 + r11 - (r22 + r33), yd = 1 + r22 - (r11 + r33), zd = 1 + r33 - (r11 + r22)
            if xd > 1 {
                b = 0.5 * xd.squareRoot(); c = 0.25 * (r12 + r21) / b; d = 0.25 * (r13 + r31) / b; a = 0.25 * (r32 - r23) / b
            } else if yd > 1 {
                c = 0.5 * yd.squareRoot(); b = 0.25 * (r12 + r21) / c; d = 0.25 * (r23 + r32) / c; a = 0.25 * (r13 - r31) / c
            } else {
                d = 0.5 * zd.squareRoot(); b = 0.25 * (r13 + r31) / d; c = 0.25 * (r23 + r32) / d; a = 0.25 * (r21 - r12) / d
            }
            if a < 0 { (b, c, d) = (-b, -c, -d) }
        }
        return (b, c, d, qfac, orthonormal)
    }
}

/// gzip streams through zlib.
enum Gzip {
    static func decompress(_ data: Data, path: String, maxBytes: Int) throws -> Data {
        do {
            return try data.withUnsafeBytes { try Zlib.inflate($0, format: .gzip, maxBytes: maxBytes + (1 << 20)) }
        } catch let e as Zlib.Error {
            throw NIfTI.Error(path: path, reason: "gzip: \(e.reason)")
        }
    }

    static func compress(_ data: Data, path: String) throws -> Data {
        do {
            return try data.withUnsafeBytes { try Zlib.deflate($0, format: .gzip) }
        } catch let e as Zlib.Error {
            throw NIfTI.Error(path: path, reason: "gzip: \(e.reason)")
        }
    }
}
