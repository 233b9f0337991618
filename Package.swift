// swift-tools-version: 6.0
import PackageDescription

// Targets follow the data flow: files → DICOM/NIfTI → Volume → preprocessing →
// tensors → model → probabilities → reports. Only `Torch` touches the engine.

// The test suite runs the debug build, where the per-voxel loops of the data modules (codecs, resampling,
// the dot filter, synthesis, AUCs) run many times slower unoptimised: the dot-filter training test took
// 116 s against 9 s optimised, the crop test 27 s against 4 s. These modules are optimised in debug
// builds too; the modules that drive the engine, the server and the CLI stay -Onone for the debugger.
let optimisedInDebug: [SwiftSetting] = [.unsafeFlags(["-O"], .when(configuration: .debug))]

let package = Package(
    name: "Willis",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "willis", targets: ["willis"]),
        .library(name: "Torch", targets: ["Torch"]),
        .library(name: "Models", targets: ["Models"]),
        .library(name: "DICOM", targets: ["DICOM"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.0"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.20"),
        // Tests only: a real HTTP client for the load test (HummingbirdTesting builds it anyway).
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.30.0"),
    ],
    targets: [
        // The C ABI header of the libtorch engine, and its run-time loader.
        .target(name: "CWillisEngine"),
        .target(name: "AtomicFile"),
        .target(name: "Torch", dependencies: ["CWillisEngine", "AtomicFile"]),
        // Codec libraries from Debian (zlib1g-dev, libcharls-dev, libopenjp2-7-dev, libturbojpeg0-dev).
        .systemLibrary(name: "CSystemZlib", pkgConfig: "zlib"),
        .systemLibrary(name: "CCharLS", pkgConfig: "charls"),
        .systemLibrary(name: "COpenJPEG", pkgConfig: "libopenjp2"),
        .systemLibrary(name: "CTurboJPEG", pkgConfig: "libturbojpeg"),
        .target(name: "VolumeCore", swiftSettings: optimisedInDebug),
        .target(name: "Zlib", dependencies: ["CSystemZlib"], swiftSettings: optimisedInDebug),
        .target(name: "Anatomy", dependencies: ["VolumeCore"], swiftSettings: optimisedInDebug),
        .target(name: "Scoring", dependencies: ["Anatomy"], swiftSettings: optimisedInDebug),
        .target(name: "Preprocessing", dependencies: ["VolumeCore", "Anatomy"], swiftSettings: optimisedInDebug),
        .target(name: "Dataset", dependencies: ["Anatomy", "Preprocessing", "DICOM", "NIfTI", "AtomicFile", "VolumeCore"], swiftSettings: optimisedInDebug),
        .target(name: "Training", dependencies: ["Torch", "Models", "Dataset", "Anatomy", "Scoring", "Preprocessing", "Reports", "AtomicFile", "Inference", "DICOM", "VolumeCore"]),
        .target(name: "Inference", dependencies: ["Torch", "Models", "DICOM", "Preprocessing", "Dataset", "Anatomy", "NIfTI", "VolumeCore", "AtomicFile", "Reports"]),
        .target(name: "Reports", dependencies: ["Zlib", "VolumeCore", "Anatomy", "Scoring"], swiftSettings: optimisedInDebug),
        .target(name: "Demo", dependencies: ["Synth", "Training", "Inference", "Reports", "Scoring", "Dataset", "DICOM", "Anatomy", "Preprocessing"]),
        .target(name: "Synth", dependencies: ["Anatomy", "Dataset", "DICOM", "NIfTI", "VolumeCore"], swiftSettings: optimisedInDebug),
        .target(name: "DICOM", dependencies: ["VolumeCore", "Zlib", "CCharLS", "COpenJPEG", "CTurboJPEG", "AtomicFile"], swiftSettings: optimisedInDebug),
        .target(name: "NIfTI", dependencies: ["VolumeCore", "Zlib", "AtomicFile"], swiftSettings: optimisedInDebug),
        .target(name: "Models", dependencies: ["Torch", "Anatomy", "Preprocessing"]),
        // The triage web app: worklist, series pages with evidence, uploads, JSON API.
        .target(name: "Server", dependencies: [
            "Inference", "Torch", "Reports", "Anatomy", "DICOM", "NIfTI", "VolumeCore", "Preprocessing", "AtomicFile",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "ZIPFoundation", package: "ZIPFoundation"),
        ]),
        .target(name: "Bench", dependencies: ["Torch", "Models", "Anatomy", "DICOM", "Inference", "Preprocessing", "VolumeCore"]),
        .executableTarget(
            name: "willis",
            dependencies: [
                "Torch", "Models", "Bench", "DICOM", "NIfTI", "VolumeCore", "Synth", "Training", "Inference", "Scoring", "Dataset", "Anatomy", "Reports", "Demo",
                "Preprocessing", "AtomicFile", "Server",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        // libFuzzer target (scripts/fuzz builds it with -sanitize=fuzzer,address).
        .systemLibrary(name: "CFuzzerDriver"),
        .executableTarget(name: "DICOMFuzz", dependencies: ["DICOM", "NIfTI", "CFuzzerDriver"]),
        .target(name: "TestSupport", dependencies: ["Torch"], path: "Tests/TestSupport"),
        .testTarget(name: "TorchTests", dependencies: ["Torch", "TestSupport"]),
        .testTarget(name: "PreprocessingTests", dependencies: ["Preprocessing", "VolumeCore", "TestSupport"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "Torch", "Anatomy", "Inference", "Scoring", "Synth", "Dataset", "DICOM", "NIfTI", "Models", "Preprocessing", "VolumeCore", "TestSupport"]),
        .testTarget(name: "SynthTests", dependencies: ["Synth", "Dataset", "DICOM", "NIfTI", "Anatomy", "VolumeCore", "Preprocessing", "TestSupport"]),
        .testTarget(name: "DatasetTests", dependencies: ["Dataset", "DICOM", "Anatomy", "Synth", "Preprocessing", "VolumeCore", "TestSupport"]),
        .testTarget(name: "ReportsTests", dependencies: ["Reports", "Scoring", "Anatomy", "VolumeCore", "TestSupport"]),
        .testTarget(name: "ScoringTests", dependencies: ["Scoring", "Anatomy", "TestSupport"]),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "Torch", "Anatomy", "TestSupport"]),
        .testTarget(name: "ServerTests", dependencies: [
            "Server", "Inference", "Models", "Torch", "Synth", "DICOM", "NIfTI", "Anatomy", "Preprocessing", "Reports", "VolumeCore", "TestSupport",
            .product(name: "HummingbirdTesting", package: "hummingbird"),
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "ZIPFoundation", package: "ZIPFoundation"),
        ]),
        .testTarget(name: "DICOMTests", dependencies: ["DICOM", "NIfTI", "VolumeCore", "TestSupport", "CSystemZlib"],
                    exclude: ["FuzzFindings"]),
    ],
    swiftLanguageModes: [.v5]
)
