import DICOM
import Preprocessing

extension DotFilter.VesselContrast {
    /// How `series`' vessels show, from what its DICOM says (modality, echo time, description): the one
    /// rule that training (through the cache's record) and prediction both use.
    public init(_ series: Series) {
        self.init(modality: series.modality, seriesDescription: series.seriesDescription, echoTimeMS: series.echoTimeMS)
    }

    /// The same from a series' headers alone (`SeriesLoader.inspect`).
    public init(_ header: SeriesHeader) {
        self.init(modality: header.modality, seriesDescription: header.seriesDescription, echoTimeMS: header.echoTimeMS)
    }
}
