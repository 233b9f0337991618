// Views and rearrangements.

extension Tensor {
    /// Same values in a new shape; one entry may be -1.
    public func reshape(_ shape: [Int]) throws -> Tensor {
        let d = shape.map(Int64.init)
        return try Tensor.make("reshape \(self.shape) to \(shape)") { api, out in
            api.pointee.reshape(handle, d, Int32(d.count), out)
        }
    }

    /// Flattens dimensions from `startDim` on.
    public func flatten(startDim: Int = 0) throws -> Tensor {
        let s = shape
        guard startDim >= 0, startDim <= s.count else {
            throw TorchError.invalidArgument("flatten: start dimension \(startDim) out of range for \(s)")
        }
        return try reshape(Array(s.prefix(startDim)) + [-1])
    }

    public func unsqueeze(_ dim: Int) throws -> Tensor {
        var s = shape
        let d = dim < 0 ? dim + s.count + 1 : dim
        guard d >= 0, d <= s.count else {
            throw TorchError.invalidArgument("unsqueeze: dimension \(dim) out of range for \(s)")
        }
        s.insert(1, at: d)
        return try reshape(s)
    }

    public func squeeze(_ dim: Int) throws -> Tensor {
        var s = shape
        let d = dim < 0 ? dim + s.count : dim
        guard d >= 0, d < s.count, s[d] == 1 else {
            throw TorchError.invalidArgument("squeeze: dimension \(dim) of \(s) is not of size 1")
        }
        s.remove(at: d)
        return try reshape(s)
    }

    public func permute(_ dims: [Int]) throws -> Tensor {
        let d = dims.map(Int64.init)
        return try Tensor.make("permute \(shape) by \(dims)") { api, out in
            api.pointee.permute(handle, d, Int32(d.count), out)
        }
    }

    public func transpose(_ a: Int, _ b: Int) throws -> Tensor {
        let n = rank
        let (x, y) = (a < 0 ? a + n : a, b < 0 ? b + n : b)
        guard (0..<n).contains(x), (0..<n).contains(y) else {
            throw TorchError.invalidArgument("transpose: dimensions \(a), \(b) out of range for rank \(n)")
        }
        var order = Array(0..<n)
        order.swapAt(x, y)
        return try permute(order)
    }

    /// `length` entries of `dim` from `start`, sharing storage.
    public func narrow(dim: Int, start: Int, length: Int) throws -> Tensor {
        try Tensor.make("narrow \(shape) dim \(dim) [\(start), +\(length))") { api, out in
            api.pointee.narrow(handle, Int64(dim), Int64(start), Int64(length), out)
        }
    }

    public func indexSelect(dim: Int, index: Tensor) throws -> Tensor {
        try Tensor.make("index_select \(shape) dim \(dim)") { api, out in
            api.pointee.index_select(handle, Int64(dim), index.handle, out)
        }
    }

    /// Reverses the order along `dims`.
    public func flip(_ dims: [Int]) throws -> Tensor {
        let d = dims.map(Int64.init)
        return try Tensor.make("flip \(shape) along \(dims)") { api, out in
            api.pointee.flip(handle, d, Int32(d.count), out)
        }
    }

    public func expand(_ shape: [Int]) throws -> Tensor {
        let d = shape.map(Int64.init)
        return try Tensor.make("expand \(self.shape) to \(shape)") { api, out in
            api.pointee.expand(handle, d, Int32(d.count), out)
        }
    }

    /// Joins tensors along an existing dimension.
    public static func cat(_ tensors: [Tensor], dim: Int) throws -> Tensor {
        guard !tensors.isEmpty else { throw TorchError.invalidArgument("cat of no tensors") }
        let handles: [OpaquePointer?] = tensors.map { $0.handle }
        return try withExtendedLifetime(tensors) {
            try Tensor.make("cat of \(tensors.map(\.shape)) along \(dim)") { api, out in
                api.pointee.cat(handles, Int32(handles.count), Int64(dim), out)
            }
        }
    }

    /// Joins tensors along a new dimension.
    public static func stack(_ tensors: [Tensor], dim: Int) throws -> Tensor {
        guard !tensors.isEmpty else { throw TorchError.invalidArgument("stack of no tensors") }
        let handles: [OpaquePointer?] = tensors.map { $0.handle }
        return try withExtendedLifetime(tensors) {
            try Tensor.make("stack of \(tensors.map(\.shape)) along \(dim)") { api, out in
                api.pointee.stack(handles, Int32(handles.count), Int64(dim), out)
            }
        }
    }
}
