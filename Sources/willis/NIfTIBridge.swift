import NIfTI
import VolumeCore

typealias NIfTIType = NIfTI.DataType

enum NIfTIWriterBridge {
    static func write(_ volume: Volume, to path: String, type: NIfTIType, version: Int) throws {
        try NIfTI.write(volume, to: path, dataType: type, version: version)
    }
}
