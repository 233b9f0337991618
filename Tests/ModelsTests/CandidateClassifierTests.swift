import Anatomy
import Foundation
import Models
import TestSupport
import Testing
import Torch

/// The detector's second stage against PyTorch (tools/oracles/candidate_classifier.py): the same module
/// loads Willis's weights strictly and gives the same logits; the cubes it is shown equal numpy's
/// edge-padded slices.
@Suite(.serialized) struct CandidateClassifierTests {
    init() throws { _ = try engine() }

    /// Norms as trained ones look: not the ones and zeros they start at, which would hide a norm read wrong.
    func giveTrainedLookingNorms(_ model: CandidateClassifier) throws {
        try Torch.withNoGrad {
            for (name, t) in model.store.namedTensors where name.contains("norm") {
                try t.copy(from: Tensor.randn(t.shape) * 0.3 + (name.hasSuffix("weight") ? 1.0 : 0.0))
            }
        }
    }

    /// The largest difference between `model`'s logits for `input` and those of PyTorch's module loaded
    /// strictly from its saved weights.
    func pyTorchsError(_ model: CandidateClassifier, _ input: Tensor, in dir: String) throws -> Float {
        try model.store.save(to: "\(dir)/classifier.safetensors")
        try SafeTensors.write([("input", input)], to: "\(dir)/probe.safetensors")
        try runOracle("candidate_classifier.py", ["forward", "\(dir)/classifier.safetensors", "\(dir)/probe.safetensors", "\(dir)/out.safetensors"])
        let ours = try Torch.withNoGrad { try model(input) }
        let theirs = try SafeTensorsFile(path: "\(dir)/out.safetensors").tensor("logits")
        return maxAbsoluteError(try ours.floats(), try theirs.floats())
    }

    @Test func pyTorchLoadsTheWeightsStrictlyAndGivesTheSameLogits() throws {
        let dir = try temporaryDirectory()
        try Torch.manualSeed(11)
        let model = try CandidateClassifier(baseFilters: 4, patchSize: 12)
        model.store.isTraining = false
        #expect(model.store.namedTensors.map(\.0) == [
            "block0.conv.weight", "block0.conv.bias", "block0.norm.weight", "block0.norm.bias",
            "block1.conv.weight", "block1.conv.bias", "block1.norm.weight", "block1.norm.bias",
            "block2.conv.weight", "block2.conv.bias", "block2.norm.weight", "block2.norm.bias",
            "down0.weight", "down0.bias", "down1.weight", "down1.bias", "head.weight", "head.bias",
        ])
        try giveTrainedLookingNorms(model)
        let input = try Tensor.randn([3, 1, 12, 12, 12])
        #expect(try Torch.withNoGrad { try model(input) }.shape == [3])
        #expect(try pyTorchsError(model, input, in: dir) < 1e-4)
        #expect(throws: TorchError.self) { try model(Tensor.randn([1, 1, 12, 12, 8])) }
        #expect(throws: TorchError.self) { try CandidateClassifier(baseFilters: 4, patchSize: 10) }
        #expect(throws: TorchError.self) { try CandidateClassifier(baseFilters: 4, patchSize: 4096) }  // as a hostile file might ask
    }

    /// The location head: PyTorch's module with the head loads the weights strictly and gives the same
    /// aneurysm and location logits for the same cubes and positions; its probabilities are one
    /// distribution per cube, read from the cube and its left-right mirror, so that the mirrored cube at
    /// the mirrored place is named as the cube is with Left and Right exchanged.
    @Test func theLocationHeadNamesAMirroredCubeAsTheOtherSideAndPyTorchAgrees() throws {
        let dir = try temporaryDirectory()
        try Torch.manualSeed(13)
        let model = try CandidateClassifier(baseFilters: 4, patchSize: 12, namesLocations: true)
        model.store.isTraining = false
        #expect(model.store.namedTensors.map(\.0).suffix(4) == ["location.hidden.weight", "location.hidden.bias", "location.out.weight", "location.out.bias"])
        #expect(model.store.namedTensors.first { $0.0 == "location.hidden.weight" }?.1.shape == [64, 8 * 4 + 3])
        try model.store.save(to: "\(dir)/classifier.safetensors")
        let input = try Tensor.randn([3, 1, 12, 12, 12])
        let positions: [[Double]] = [[-30, 12, 4], [25, -8, 10], [0, 40, -20]]
        let positionTensor = try Tensor(positions.flatMap { $0.map(Float.init) }, shape: [3, 3])
        try SafeTensors.write([("input", input), ("positions", positionTensor)], to: "\(dir)/probe.safetensors")
        try runOracle("candidate_classifier.py", ["forward", "\(dir)/classifier.safetensors", "\(dir)/probe.safetensors", "\(dir)/out.safetensors"])
        let ours = try Torch.withNoGrad { try model.outputs(input, positions: positionTensor) }
        let theirs = try SafeTensorsFile(path: "\(dir)/out.safetensors")
        let locations = try #require(ours.locations)
        #expect(locations.shape == [3, 13])
        #expect(maxAbsoluteError(try ours.logits.floats(), try theirs.tensor("logits").floats()) < 1e-4)
        #expect(maxAbsoluteError(try locations.floats(), try theirs.tensor("locations").floats()) < 1e-4)
        #expect(maxAbsoluteError(try model(input).floats(), try ours.logits.floats()) < 1e-6, "the head leaves the aneurysm logit as it was")

        let read = try Torch.withNoGrad { try model.read(input, positions: positions) }
        let named = try #require(read.locations)
        let expectedQ = try Torch.withNoGrad { try ((model(input).sigmoid() + model(input.flip([4])).sigmoid()) * 0.5).floats() }
        #expect(maxAbsoluteError(read.q.map(Float.init), expectedQ) < 1e-6, "the aneurysm probability is the mean of the cube's and the mirror's")
        #expect(named.count == 3 && named.allSatisfy { $0.count == 13 && abs($0.reduce(0, +) - 1) < 1e-5 && $0.allSatisfy { $0 >= 0 } })
        let mirroredPositions = positions.map { [-$0[0], $0[1], $0[2]] }
        let mirrored = try #require(try Torch.withNoGrad { try model.read(input.flip([4]), positions: mirroredPositions) }.locations)
        for (a, b) in zip(named, mirrored) {
            #expect(maxAbsoluteError(a.map(Float.init), LocationLabel.locations.map { Float(b[$0.mirrored.rawValue]) }) < 1e-5)
        }
        // Not symmetric by construction: the head alone (no mirror) names the mirrored cube otherwise.
        let logits = try Torch.withNoGrad {
            try #require(model.outputs(input.flip([4]), positions: Tensor(mirroredPositions.flatMap { $0.map(Float.init) }, shape: [3, 3])).locations).floats()
        }
        let direct = (0..<3).flatMap { e -> [Float] in
            let row = logits[(e * 13)..<(e * 13 + 13)], top = row.max() ?? 0
            let sum = row.map { Foundation.exp($0 - top) }.reduce(0, +)
            return row.map { Foundation.exp($0 - top) / sum }
        }
        #expect(maxAbsoluteError(direct, mirrored.flatMap { $0.map(Float.init) }) > 1e-4)
        #expect(try CandidateClassifier(baseFilters: 4, patchSize: 12).read(input, positions: []).locations == nil, "no head: no positions needed")
        #expect(throws: TorchError.self) { try model.outputs(input, positions: Tensor.randn([2, 3])) }
    }

    /// Under bf16 autocast the classifier gives PyTorch's logits under `torch.autocast("cpu", bfloat16)`
    /// for the same weights, in float32, and differs from its own float32 logits by bf16's rounding only;
    /// switching autocast off gives the float32 logits back (the weights stay float32).
    @Test func underBF16AutocastTheLogitsArePyTorchsUnderTheSameAutocast() throws {
        let dir = try temporaryDirectory()
        try Torch.manualSeed(17)
        let model = try CandidateClassifier(baseFilters: 4, patchSize: 12, namesLocations: true)
        model.store.isTraining = false
        try model.store.save(to: "\(dir)/classifier.safetensors")
        let input = try Tensor.randn([3, 1, 12, 12, 12])
        let positions = try Tensor([-30, 12, 4, 25, -8, 10, 0, 40, -20] as [Float], shape: [3, 3])
        try SafeTensors.write([("input", input), ("positions", positions)], to: "\(dir)/probe.safetensors")
        try runOracle("candidate_classifier.py", ["forward", "\(dir)/classifier.safetensors", "\(dir)/probe.safetensors", "\(dir)/fp32.safetensors"])
        try runOracle("candidate_classifier.py", ["forward", "\(dir)/classifier.safetensors", "\(dir)/probe.safetensors", "\(dir)/bf16.safetensors", "bf16"])
        let fp32 = try Torch.withNoGrad { try model.outputs(input, positions: positions) }
        model.autocast = .bfloat16
        let bf16 = try Torch.withNoGrad { try model.outputs(input, positions: positions) }
        let bf16Logits = try Torch.withNoGrad { try model(input) }
        #expect(bf16.logits.dtype == .float32 && bf16.locations?.dtype == .float32 && bf16Logits.dtype == .float32)
        let theirs = try SafeTensorsFile(path: "\(dir)/bf16.safetensors"), theirsFP32 = try SafeTensorsFile(path: "\(dir)/fp32.safetensors")
        let ours = (logits: try bf16.logits.floats(), locations: try #require(bf16.locations).floats())
        let plain = (logits: try fp32.logits.floats(), locations: try #require(fp32.locations).floats())
        #expect(maxAbsoluteError(ours.logits, try theirs.tensor("logits").floats()) < 1e-3)
        #expect(maxAbsoluteError(ours.locations, try theirs.tensor("locations").floats()) < 1e-3)
        #expect(maxAbsoluteError(plain.logits, try theirsFP32.tensor("logits").floats()) < 1e-4)
        #expect(maxAbsoluteError(try bf16Logits.floats(), ours.logits) < 1e-6, "the head leaves the aneurysm logit as it was")
        // bf16 keeps 8 bits of mantissa: the outputs move, by rounding's size and not more.
        let moved = max(maxAbsoluteError(ours.logits, plain.logits), maxAbsoluteError(ours.locations, plain.locations))
        #expect(moved > 1e-4 && moved < 0.1, "bf16 moved the outputs by \(moved)")
        model.autocast = nil
        #expect(maxAbsoluteError(try Torch.withNoGrad { try model(input) }.floats(), plain.logits) == 0)
    }

    /// Reading all eight flips: the aneurysm probability is the mean of the eight views' read directly; a
    /// cube flipped head-foot or front-back is read as the cube itself (its eight views are the same eight),
    /// and mirrored at the mirrored place it is named with Left and Right exchanged; the mirror alone
    /// reads the flipped cube otherwise.
    @Test func readingAllFlipsAveragesEightViewsAndNamesAFlippedCubeAsTheCube() throws {
        try Torch.manualSeed(17)
        let model = try CandidateClassifier(baseFilters: 4, patchSize: 12, namesLocations: true)
        model.store.isTraining = false
        let input = try Tensor.randn([3, 1, 12, 12, 12])
        let positions: [[Double]] = [[-30, 12, 4], [25, -8, 10], [0, 40, -20]]
        let all = try Torch.withNoGrad { try model.read(input, positions: positions, flips: .all) }
        let views: [[Int]] = [[], [2], [3], [2, 3], [4], [2, 4], [3, 4], [2, 3, 4]]
        var expectedQ = [Float](repeating: 0, count: 3)
        for axes in views {
            let q = try Torch.withNoGrad { try model(axes.isEmpty ? input : input.flip(axes)).sigmoid().floats() }
            for e in 0..<3 { expectedQ[e] += q[e] / 8 }
        }
        #expect(maxAbsoluteError(all.q.map(Float.init), expectedQ) < 1e-6)
        let named = try #require(all.locations)
        #expect(named.allSatisfy { abs($0.reduce(0, +) - 1) < 1e-5 })
        let mirror = try Torch.withNoGrad { try model.read(input, positions: positions) }
        for axes in [[2], [3], [2, 3]] {
            let flipped = try Torch.withNoGrad { try model.read(input.flip(axes), positions: positions, flips: .all) }
            #expect(maxAbsoluteError(flipped.q.map(Float.init), all.q.map(Float.init)) < 1e-5, "\(axes)")
            #expect(maxAbsoluteError(try #require(flipped.locations).flatMap { $0.map(Float.init) }, named.flatMap { $0.map(Float.init) }) < 1e-5, "\(axes)")
            let alone = try Torch.withNoGrad { try model.read(input.flip(axes), positions: positions) }
            #expect(maxAbsoluteError(alone.q.map(Float.init), mirror.q.map(Float.init)) > 1e-4, "the mirror alone is not blind to \(axes)")
        }
        let mirroredPositions = positions.map { [-$0[0], $0[1], $0[2]] }
        let other = try #require(try Torch.withNoGrad { try model.read(input.flip([2, 4]), positions: mirroredPositions, flips: .all) }.locations)
        for (a, b) in zip(named, other) {
            #expect(maxAbsoluteError(a.map(Float.init), LocationLabel.locations.map { Float(b[$0.mirrored.rawValue]) }) < 1e-5)
        }
    }

    /// With a context channel the first convolution takes two channels, and PyTorch's module built with
    /// two loads the weights strictly and agrees; a context wider than the network can take is refused.
    @Test func aContextChannelDoublesTheFirstConvolutionsInputsAndPyTorchAgrees() throws {
        let dir = try temporaryDirectory()
        try Torch.manualSeed(12)
        let model = try CandidateClassifier(baseFilters: 4, patchSize: 12, contextScale: 2)
        model.store.isTraining = false
        #expect(model.inputChannels == 2)
        #expect(model.store.namedTensors.first { $0.0 == "block0.conv.weight" }?.1.shape == [4, 2, 3, 3, 3])
        #expect(try pyTorchsError(model, Tensor.randn([3, 2, 12, 12, 12]), in: dir) < 1e-4)
        #expect(throws: TorchError.self, "one channel where two are taken") { try model(Tensor.randn([1, 1, 12, 12, 12])) }
        for scale in [1, 5, 64] {
            #expect(throws: TorchError.self) { try CandidateClassifier(baseFilters: 4, patchSize: 12, contextScale: scale) }
        }
    }

    /// Depth 2 adds one residual convolution after `block1` and one after `block2`, under the names
    /// PyTorch's module gives them (`residual1.0`, `residual2.0`); PyTorch loads the weights strictly and
    /// agrees. With those convolutions' norms at 0 they add nothing, and the network gives depth 1's
    /// logits from depth 1's weights. Depths the network cannot take are refused.
    @Test func aDeeperNetworkAddsResidualConvolutionsAndPyTorchAgrees() throws {
        try Torch.manualSeed(14)
        let deep = try CandidateClassifier(baseFilters: 4, patchSize: 12, depth: 3)
        #expect(deep.depth == 3)
        let shapes = Dictionary(uniqueKeysWithValues: deep.store.namedTensors.map { ($0.0, $0.1.shape) })
        #expect(shapes["residual1.0.conv.weight"] == [8, 8, 3, 3, 3] && shapes["residual1.1.norm.bias"] == [8])
        #expect(shapes["residual2.0.conv.weight"] == [16, 16, 3, 3, 3] && shapes["residual2.1.conv.bias"] == [16])
        #expect(shapes.count == 18 + 4 * 4, "four further convolutions of four tensors each")
        deep.store.isTraining = false
        try giveTrainedLookingNorms(deep)
        let input = try Tensor.randn([3, 1, 12, 12, 12])
        #expect(try pyTorchsError(deep, input, in: try temporaryDirectory()) < 1e-4)

        // Depth 1's weights in depth 2's network, the further norms at 0: depth 1's logits.
        let shallow = try CandidateClassifier(baseFilters: 4, patchSize: 12)
        shallow.store.isTraining = false
        let deeper = try CandidateClassifier(baseFilters: 4, patchSize: 12, depth: 2)
        deeper.store.isTraining = false
        let kept = Dictionary(uniqueKeysWithValues: shallow.store.namedTensors)
        try Torch.withNoGrad {
            for (name, t) in deeper.store.namedTensors {
                if let same = kept[name] { try t.copy(from: same) } else if name.contains("norm") { try t.copy(from: t * 0.0) }
            }
        }
        let a = try Torch.withNoGrad { try shallow(input).floats() }, b = try Torch.withNoGrad { try deeper(input).floats() }
        #expect(maxAbsoluteError(a, b) < 1e-5)
        let c = try Torch.withNoGrad { try deep(input).floats() }
        #expect(maxAbsoluteError(a, c) > 1e-3, "a deeper network with its own weights is another function")
        for depth in [0, 5, 1000] {
            #expect(throws: TorchError.self) { try CandidateClassifier(baseFilters: 4, patchSize: 12, depth: depth) }
        }
    }

    /// The context channel's cube is numpy's mean over scale³ blocks of the edge-padded slice scale times
    /// wider, centred where the cube is; the view is the cube followed by it.
    @Test func contextCubesAreNumpysBlockMeansOfAWiderSlice() throws {
        let dir = try temporaryDirectory()
        let shape = [7, 9, 11]
        let image = (0..<shape.reduce(1, *)).map { Float(sin(Double($0) * 0.7)) }  // no two neighbours alike
        let centres: [[Double]] = [[5, 4, 3], [0, 0, 0], [10, 8, 6], [-3, 12, 2], [5.5, 4.5, 3.5], [2.4, 6.6, 1]]
        for (size, scale) in [(4, 2), (5, 2), (4, 3)] {
            try SafeTensors.write([("image", Tensor(image, shape: shape)), ("centres", Tensor(centres.flatMap { $0.map(Float.init) }, shape: [centres.count, 3])),
                                   ("size", Tensor([Float(size)], shape: [1])), ("scale", Tensor([Float(scale)], shape: [1]))], to: "\(dir)/probe.safetensors")
            try runOracle("candidate_classifier.py", ["context", "\(dir)/probe.safetensors", "\(dir)/cubes.safetensors"])
            let expected = try SafeTensorsFile(path: "\(dir)/cubes.safetensors").tensor("cubes").floats()
            let ours = centres.flatMap { CandidateClassifier.contextCube(image, shape: shape, centre: $0, size: size, scale: scale) }
            #expect(maxAbsoluteError(ours, expected) < 1e-6, "size \(size), scale \(scale)")
        }
        let view = CandidateClassifier.view(image, shape: shape, centre: [5, 4, 3], size: 4, contextScale: 2)
        #expect(view == CandidateClassifier.cube(image, shape: shape, centre: [5, 4, 3], size: 4)
            + CandidateClassifier.contextCube(image, shape: shape, centre: [5, 4, 3], size: 4, scale: 2))
        #expect(CandidateClassifier.view(image, shape: shape, centre: [5, 4, 3], size: 4, contextScale: nil) == CandidateClassifier.cube(image, shape: shape, centre: [5, 4, 3], size: 4))
    }

    @Test func cubesAreNumpysEdgePaddedSlices() throws {
        let dir = try temporaryDirectory()
        let shape = [7, 9, 11]
        let image = (0..<shape.reduce(1, *)).map { Float($0) }
        // Inside, on the edges, beyond them, and between samples (a subdivided grid's voxel centres).
        let centres: [[Double]] = [[5, 4, 3], [0, 0, 0], [10, 8, 6], [-3, 12, 2], [5.5, 4.5, 3.5], [2.4, 6.6, 1]]
        for size in [4, 5] {
            try SafeTensors.write([("image", Tensor(image, shape: shape)), ("centres", Tensor(centres.flatMap { $0.map(Float.init) }, shape: [centres.count, 3])),
                                   ("size", Tensor([Float(size)], shape: [1]))], to: "\(dir)/probe.safetensors")
            try runOracle("candidate_classifier.py", ["cube", "\(dir)/probe.safetensors", "\(dir)/cubes.safetensors"])
            let expected = try SafeTensorsFile(path: "\(dir)/cubes.safetensors").tensor("cubes").floats()
            let cubes = centres.flatMap { CandidateClassifier.cube(image, shape: shape, centre: $0, size: size) }
            #expect(cubes == expected, "size \(size)")
        }
        // A grid voxel's centre among the samples of a twice-finer image: the middle of its 2 × 2 × 2.
        #expect(CandidateClassifier.sampleCentre(gridVoxel: [3, 0, 10], subdivision: 2) == [6.5, 0.5, 20.5])
        #expect(CandidateClassifier.sampleCentre(gridVoxel: [3, 0, 10], subdivision: 1) == [3, 0, 10])
    }
}
