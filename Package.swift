// swift-tools-version: 6.0
import PackageDescription

// Targets follow the data flow: files → DICOM/NIfTI → Volume → preprocessing →
// tensors → model → probabilities → reports. Only `Torch` touches the engine.
let package = Package(
    name: "Willis",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "willis", targets: ["willis"]),
        .library(name: "Torch", targets: ["Torch"]),
        .library(name: "Models", targets: ["Models"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // The C ABI header of the libtorch engine, and its run-time loader.
        .target(name: "CWillisEngine"),
        .target(name: "Torch", dependencies: ["CWillisEngine"]),
        .target(name: "Models", dependencies: ["Torch"]),
        .target(name: "Bench", dependencies: ["Torch", "Models"]),
        .executableTarget(
            name: "willis",
            dependencies: [
                "Torch", "Models", "Bench",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .target(name: "TestSupport", dependencies: ["Torch"], path: "Tests/TestSupport"),
        .testTarget(name: "TorchTests", dependencies: ["Torch", "TestSupport"]),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "Torch", "TestSupport"]),
    ],
    swiftLanguageModes: [.v5]
)
