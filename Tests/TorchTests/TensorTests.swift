import Foundation
import TestSupport
import Testing
import Torch

@Suite struct TensorTests {
    init() throws { _ = try engine() }

    @Test func arrayRoundTripKeepsShapeAndValues() throws {
        let values: [Float] = (0..<24).map { Float($0) * 0.5 - 3 }
        let t = try Tensor(values, shape: [2, 3, 4])
        #expect(t.shape == [2, 3, 4])
        #expect(t.dtype == .float32)
        #expect(t.device == .cpu)
        #expect(try t.toArray(of: Float.self) == values)
        let ints = try Tensor([Int64(5), -7, 1 << 40], shape: [3])
        #expect(try ints.toArray(of: Int64.self) == [5, -7, 1 << 40])
        let bytes = try Tensor([UInt8(0), 255, 17], shape: [3])
        #expect(try bytes.toArray(of: UInt8.self) == [0, 255, 17])
    }

    @Test(arguments: [DType.float16, .bfloat16, .float64, .int64, .uint8])
    func conversionsThroughEveryDType(dtype: DType) throws {
        let t = try Tensor([Float(1), 2, 3, 100], shape: [2, 2])
        let converted = try t.to(dtype)
        #expect(converted.dtype == dtype)
        #expect(converted.shape == [2, 2])
        #expect(try converted.floats() == [1, 2, 3, 100])
        #expect(try converted.withUnsafeBytes { $0.count } == 4 * dtype.byteSize)
    }

    @Test func wrongCountAndWrongTypeAreTypedErrors() throws {
        #expect(throws: TorchError.self) { try Tensor([Float(1), 2, 3], shape: [2, 2]) }
        #expect(throws: TorchError.self) { try Tensor([Float(1)], shape: [-1]) }
        let t = try Tensor.zeros([2])
        #expect(throws: TorchError.self) { try t.toArray(of: Int64.self) }
    }

    @Test func incompatibleShapesThrowAndNameTheShapes() throws {
        let a = try Tensor.zeros([2, 3]), b = try Tensor.zeros([4, 5])
        do {
            _ = try a + b
            Issue.record("adding [2,3] and [4,5] succeeded")
        } catch let TorchError.operation(op, message) {
            #expect(op.contains("[2, 3]") && op.contains("[4, 5]"))
            #expect(!message.isEmpty)
        }
        #expect(throws: TorchError.self) { try a.reshape([7]) }
        #expect(throws: TorchError.self) { try Tensor.cat([a, b], dim: 0) }
        #expect(throws: TorchError.self) { try a.matmul(a) }
        #expect(throws: TorchError.self) { try a.conv3d(weight: a, bias: nil) }
        #expect(throws: TorchError.self) { try a.narrow(dim: 1, start: 2, length: 5) }
        #expect(throws: TorchError.self) { try a.transpose(0, 3) }
        // A failed call leaves nothing behind: the next call works.
        #expect(try (a + a).shape == [2, 3])
    }

    @Test func shapeOperations() throws {
        let t = try Tensor((0..<24).map(Float.init), shape: [2, 3, 4])
        #expect(try t.permute([2, 0, 1]).shape == [4, 2, 3])
        #expect(try t.transpose(0, 2).contiguous().toArray(of: Float.self).prefix(3) == [0, 12, 4])
        #expect(try t.flatten(startDim: 1).shape == [2, 12])
        #expect(try t.unsqueeze(0).shape == [1, 2, 3, 4])
        #expect(try t.unsqueeze(-1).shape == [2, 3, 4, 1])
        #expect(try t.narrow(dim: 2, start: 1, length: 2).contiguous().toArray(of: Float.self).prefix(2) == [1, 2])
        #expect(try t.flip([2]).contiguous().toArray(of: Float.self).prefix(4) == [3, 2, 1, 0])
        let index = try Tensor([Int64(2), 0], shape: [2])
        #expect(try t.indexSelect(dim: 1, index: index).shape == [2, 2, 4])
        #expect(try Tensor.cat([t, t], dim: 1).shape == [2, 6, 4])
        #expect(try Tensor.stack([t, t, t], dim: 0).shape == [3, 2, 3, 4])
        #expect(try Tensor.ones([1, 3, 1]).expand([2, 3, 5]).shape == [2, 3, 5])
        #expect(try t.sum(dims: [0, 2]).toArray(of: Float.self) == [60, 92, 124])
        #expect(try t.argmax().item() == 23)
    }

    @Test func scalarArithmeticAndComparisons() throws {
        let t = try Tensor([Float(-2), 0, 3], shape: [3])
        #expect(try (t * 2 + 1).toArray(of: Float.self) == [-3, 1, 7])
        #expect(try (10 - t).toArray(of: Float.self) == [12, 10, 7])
        #expect(try t.clamp(min: -1, max: 2).toArray(of: Float.self) == [-1, 0, 2])
        #expect(try t.gt(0).toArray(of: Bool.self) == [false, false, true])
        #expect(try Tensor.where(t.gt(0), t, Tensor.zeros([1])).toArray(of: Float.self) == [0, 0, 3])
        #expect(try t.relu().toArray(of: Float.self) == [0, 0, 3])
        try t.relu_()
        #expect(try t.toArray(of: Float.self) == [0, 0, 3])
    }

    @Test func autogradAndNoGrad() throws {
        let x = try Tensor([Float(1), 2, 3], shape: [3]).setRequiresGrad()
        let y = try (x * x).sum()
        try y.backward()
        #expect(try x.grad?.toArray(of: Float.self) == [2, 4, 6])
        try x.zeroGrad()
        #expect(x.grad == nil)
        let z = try Torch.withNoGrad { try (x * 3).sum() }
        #expect(!z.requiresGrad)
        #expect(throws: TorchError.self) { try z.backward() }
        #expect(try (x * 3).sum().requiresGrad)
    }

    @Test func zeroCopyMemoryIsReleasedWhenTheTensorGoes() throws {
        let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: 6)
        for i in 0..<6 { buffer[i] = Float(i) }
        var released = false
        do {
            let t = try Tensor.wrapping(UnsafeMutableRawPointer(buffer.baseAddress!), shape: [2, 3], dtype: .float32) {
                released = true
            }
            buffer[0] = 42  // no copy: the tensor sees the change
            #expect(try t.toArray(of: Float.self).first == 42)
            #expect(!released)
        }
        #expect(released)
        buffer.deallocate()
    }

    /// Needs `swift test --no-parallel` (scripts/test): the generator is process-wide.
    @Test func randomIsReproducibleWithASeed() throws {
        try Torch.manualSeed(3)
        let a = try Tensor.randn([5]).toArray(of: Float.self)
        try Torch.manualSeed(3)
        let b = try Tensor.randn([5]).toArray(of: Float.self)
        #expect(a == b)
        let u = try Tensor.rand([1000]).toArray(of: Float.self)
        #expect(u.allSatisfy { $0 >= 0 && $0 < 1 })
    }

    @Test func autocastOnCPUComputesInBFloat16() throws {
        let x = try Tensor.randn([4, 8]), w = try Tensor.randn([3, 8])
        let y = try Torch.withAutocast(.cpu, dtype: .bfloat16) { try x.linear(weight: w, bias: nil) }
        #expect(y.dtype == .bfloat16)
        #expect(try x.linear(weight: w, bias: nil).dtype == .float32)
        #expect(throws: TorchError.self) { try Torch.withAutocast(.cpu, dtype: .int64) { 0 } }
    }

    @Test func optimizerStateSurvivesSaveAndLoad() throws {
        func quadraticStep(_ p: Tensor, _ o: Optimizer) throws {
            try o.zeroGrad()
            try (p - 1).square().sum().backward()
            try o.step()
        }
        let start = try Tensor.randn([6])
        let a = try start.clone().setRequiresGrad(), b = try start.clone().setRequiresGrad()
        let oa = try Optimizer(.adam(), parameters: [a], learningRate: 0.05)
        for _ in 0..<3 { try quadraticStep(a, oa) }
        let state = try oa.stateData()
        #expect(!state.isEmpty)
        try b.copy(from: a)
        let ob = try Optimizer(.adam(), parameters: [b], learningRate: 0.05)
        try ob.loadState(state)
        try quadraticStep(a, oa)
        try quadraticStep(b, ob)
        #expect(try a.toArray(of: Float.self) == b.toArray(of: Float.self))
        try oa.setLearningRate(0.5)
        #expect(oa.learningRate == 0.5)
        #expect(throws: TorchError.self) { try ob.loadState(Data([1, 2, 3])) }
        #expect(throws: TorchError.self) { try oa.setLearningRate(.nan) }
    }

    @Test func threadCountIsSettable() throws {
        let before = Torch.threadCount
        try Torch.setThreadCount(1)
        #expect(Torch.threadCount == 1)
        try Torch.setThreadCount(max(before, 1))
        #expect(throws: TorchError.self) { try Torch.setThreadCount(0) }
    }
}
