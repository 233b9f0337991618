import Foundation
import TestSupport
import Testing
import Torch

/// Each op against PyTorch's output on the same inputs (tools/oracles/torch_ops.py).
@Suite struct OpsOracleTests {
    let file: SafeTensorsFile

    init() throws {
        try engine()
        file = try SafeTensorsFile(path: fixture("torch_ops.safetensors", generator: "torch_ops.py"))
    }

    func t(_ name: String) throws -> Tensor { try file.tensor(name) }

    func check(_ name: String, _ result: Tensor, tolerance: Float = 1e-5) throws {
        let expected = try t("\(name).out")
        #expect(result.shape == expected.shape, "\(name): shape \(result.shape) vs \(expected.shape)")
        let error = maxAbsoluteError(try result.floats(), try expected.floats())
        #expect(error <= tolerance, "\(name): max error \(error)")
    }

    @Test func broadcastingElementwise() throws {
        try check("broadcast_add", t("broadcast_add.a") + t("broadcast_add.b"))
        try check("broadcast_mul", t("broadcast_mul.a") * t("broadcast_mul.b"))
        try check("broadcast_div", t("broadcast_div.a") / t("broadcast_div.b"))
        #expect(try (t("broadcast_add.a") + t("broadcast_add.b")).shape == [2, 4, 3])
    }

    @Test func reductions() throws {
        try check("sum_dims", t("sum_dims.a").sum(dims: [2, 4], keepDims: true))
        try check("mean_dim", t("mean_dim.a").mean(dims: [1]))
        try check("amax_dim", t("amax_dim.a").max(dims: [3]))
        try check("std_all", t("std_all.a").std())
    }

    @Test func activations() throws {
        try check("gelu", t("gelu.a").gelu())
        try check("leaky_relu", t("leaky_relu.a").leakyRelu(slope: 0.2))
        try check("sigmoid", t("sigmoid.a").sigmoid())
    }

    @Test func pooling() throws {
        try check("max_pool3d", t("max_pool3d.a").maxPool3d(kernel: (2, 2, 2)))
        try check("avg_pool3d", t("avg_pool3d.a").avgPool3d(kernel: (2, 2, 2)))
        try check("adaptive_avg_pool3d", t("adaptive_avg_pool3d.a").adaptiveAvgPool3d((2, 3, 1)))
        try check("adaptive_max_pool3d", t("adaptive_max_pool3d.a").adaptiveMaxPool3d((1, 2, 3)))
    }

    @Test func interpolation() throws {
        try check("trilinear", t("trilinear.a").interpolate(size: [7, 3, 9]))
        try check("trilinear_ac", t("trilinear_ac.a").interpolate(size: [7, 3, 9], alignCorners: true))
        try check("nearest", t("nearest.a").interpolate(size: [8, 10, 3], mode: .nearest))
    }

    @Test func convolutions() throws {
        try check("conv3d", t("conv3d.a").conv3d(weight: t("conv3d.w"), bias: t("conv3d.b"), stride: (1, 2, 1), padding: (1, 0, 2)),
                  tolerance: 1e-4)
        try check("conv_transpose3d", t("conv_transpose3d.a").convTranspose3d(
            weight: t("conv_transpose3d.w"), bias: t("conv_transpose3d.b"), stride: (2, 2, 2)), tolerance: 1e-4)
        try check("linear", t("linear.a").linear(weight: t("linear.w"), bias: t("linear.b")))
    }

    @Test func normalisation() throws {
        try check("instance_norm", t("instance_norm.a").instanceNorm(weight: t("instance_norm.w"), bias: t("instance_norm.b")))
        let rm = try Tensor.zeros([3]), rv = try Tensor.ones([3])
        try check("batch_norm_train", t("batch_norm_train.a").batchNorm(
            weight: t("batch_norm_train.w"), bias: t("batch_norm_train.b"), runningMean: rm, runningVar: rv, training: true))
        #expect(maxAbsoluteError(try rm.floats(), try t("batch_norm_train.running_mean").floats()) < 1e-6)
        #expect(maxAbsoluteError(try rv.floats(), try t("batch_norm_train.running_var").floats()) < 1e-6)
    }

    @Test func losses() throws {
        try check("bce_logits", t("bce_logits.a").binaryCrossEntropyWithLogits(
            target: t("bce_logits.target"), posWeight: t("bce_logits.pos_weight")))
        try check("bce_logits_none", t("bce_logits_none.a").binaryCrossEntropyWithLogits(
            target: t("bce_logits_none.target"), reduction: .none))
        try check("cross_entropy", t("cross_entropy.a").crossEntropy(target: t("cross_entropy.target")))
    }

    func runOptimizer(_ kind: Optimizer.Kind, lr: Double, name: String) throws {
        let p = try t("opt_\(name).start").clone().setRequiresGrad()
        let optimizer = try Optimizer(kind, parameters: [p], learningRate: lr)
        for _ in 0..<3 {
            try optimizer.zeroGrad()
            try (p - 1).square().sum().backward()
            try optimizer.step()
        }
        try check("opt_\(name)", p, tolerance: 1e-6)
    }

    @Test func optimizersMatchPyTorch() throws {
        try runOptimizer(.adamW(weightDecay: 0.05), lr: 0.01, name: "adamw")
        try runOptimizer(.sgd(momentum: 0.9, nesterov: true), lr: 0.1, name: "sgd_nesterov")
        try runOptimizer(.adam(), lr: 0.01, name: "adam")
    }

    @Test func schedulersMatchPyTorch() throws {
        let metrics = try t("plateau.metrics").toArray(of: Double.self)
        var plateau = ReduceLROnPlateau(learningRate: 1e-3, factor: 0.5, patience: 3)
        let lrs = metrics.enumerated().map { plateau.step(epoch: $0.offset, metric: $0.element) }
        #expect(lrs == (try t("plateau.out").toArray(of: Double.self)))

        var cosine = CosineSchedule(base: 0.1, minimum: 0.001, totalEpochs: 10)
        let cos = (0..<10).map { cosine.step(epoch: $0, metric: nil) }
        let expectedCos = try t("cosine.out").toArray(of: Double.self)
        #expect(zip(cos, expectedCos).allSatisfy { abs($0 - $1) < 1e-12 }, "\(cos) vs \(expectedCos)")

        var poly = PolySchedule(base: 0.1, totalEpochs: 10, power: 0.9)
        let pol = (0..<10).map { poly.step(epoch: $0, metric: nil) }
        let expectedPoly = try t("poly.out").toArray(of: Double.self)
        #expect(zip(pol, expectedPoly).allSatisfy { abs($0 - $1) < 1e-12 }, "\(pol) vs \(expectedPoly)")
    }

    /// A checkpoint can be written before any validation metric (a run validating every few epochs): the
    /// plateau schedule's best metric is still +∞ then, which JSON cannot hold; it round-trips all the same.
    @Test func plateauStateRoundTripsBeforeAndAfterItsFirstMetric() throws {
        var plateau = ReduceLROnPlateau(learningRate: 1e-3, factor: 0.5, patience: 3, threshold: 1e-3, minLearningRate: 1e-6)
        _ = plateau.step(epoch: 0, metric: nil)
        let before = try JSONDecoder().decode(ReduceLROnPlateau.self, from: JSONEncoder().encode(plateau))
        #expect(before == plateau && before.best == .infinity)
        for (epoch, metric) in [0.9, 0.95, 0.97, 0.99, 1.0].enumerated() { _ = plateau.step(epoch: epoch + 1, metric: metric) }
        let after = try JSONDecoder().decode(ReduceLROnPlateau.self, from: JSONEncoder().encode(plateau))
        #expect(after == plateau && after.best == 0.9 && after.learningRate == 5e-4)
    }

    @Test func readsEveryDTypePyTorchWrites() throws {
        let reference = try t("dtype.f32").floats()
        #expect(file.entry("dtype.f16")?.dtype == .float16)
        #expect(file.entry("dtype.bf16")?.dtype == .bfloat16)
        #expect(maxRelativeError(try t("dtype.f16").floats(), reference) < 1e-3)
        #expect(maxRelativeError(try t("dtype.bf16").floats(), reference) < 1e-2)
        let ints = try t("dtype.i64").toArray(of: Int64.self)
        #expect(ints == (try t("dtype.f32").to(.int64).toArray(of: Int64.self)))
        let bytes = try t("dtype.u8").toArray(of: UInt8.self)
        #expect(bytes == (try t("dtype.f32").abs().to(.uint8).toArray(of: UInt8.self)))
    }
}
