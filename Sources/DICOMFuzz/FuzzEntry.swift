import CFuzzerDriver
import DICOM
import Foundation
import NIfTI

/// libFuzzer target for the DICOM element parser, the pixel decoders and the
/// NIfTI reader. Every input must end in a value or a typed error; a trap, a
/// sanitizer report or a leak is a finding. Built and run by scripts/fuzz.
@main
struct DICOMFuzz {
    static func main() {
        guard willis_fuzzer_linked() != 0 else {
            FileHandle.standardError.write(Data("built without libFuzzer: run scripts/fuzz\n".utf8))
            exit(2)
        }
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(willis_run_fuzzer(&argc, &argv) { data, size in
            guard let data else { return 0 }
            fuzzOne(Data(bytes: data, count: size))
            return 0
        })
    }
}

func fuzzOne(_ data: Data) {
        let limits = ReadOptions(maxPixelBytes: 64 << 20)
        if let file = try? DICOMFile.parse(data, path: "fuzz", options: limits) {
            _ = try? PixelDecoder.decode(file, options: limits)
            _ = file.dataSet.numbers(.imagePositionPatient)
            _ = file.dataSet.strings(.imageType)
        }
        _ = try? NIfTI.parse(data, path: "fuzz", maxBytes: 64 << 20)
}
