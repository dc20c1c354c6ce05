import Foundation

/// Finding and reading datasets: files by extension, the `_TEST` sibling of a `_TRAIN`
/// file, and the dataset shipped with LowBit.
public enum Datasets {
    /// Reads a `.ts` file, or CSV/TSV (`.csv`, `.tsv`, `.txt`).
    public static func read(_ path: String) throws -> TimeSeriesDataset {
        switch URL(fileURLWithPath: path).pathExtension.lowercased() {
        case "ts": return try TSFile.read(path)
        case "csv", "tsv", "txt": return try CSVFile.read(path)
        default:
            throw LowBitError.invalidFile(path: path, reason: "unknown dataset format: expected a .ts, .csv, .tsv or .txt file")
        }
    }

    /// The test file beside a training file: `X_TRAIN.ext` → `X_TEST.ext` (any case of
    /// TRAIN), if it exists.
    public static func testSibling(of path: String) -> String? {
        let url = URL(fileURLWithPath: path)
        let stem = url.deletingPathExtension().lastPathComponent
        for (train, test) in [("_TRAIN", "_TEST"), ("_train", "_test"), ("_Train", "_Test")] where stem.hasSuffix(train) {
            let sibling = url.deletingLastPathComponent()
                .appendingPathComponent(String(stem.dropLast(train.count)) + test)
                .appendingPathExtension(url.pathExtension).path
            return FileManager.default.fileExists(atPath: sibling) ? sibling : nil
        }
        return nil
    }

    /// JapaneseVowels (UCI; Kudo, Toyama & Shimbo 1999, via the UEA archive): 9 speakers,
    /// 12 LPC cepstrum channels, lengths 7 to 29, 270 training and 370 test series.
    public static func japaneseVowels() throws -> (train: TimeSeriesDataset, test: TimeSeriesDataset) {
        (try TSFile.read(try japaneseVowelsPath("TRAIN")), try TSFile.read(try japaneseVowelsPath("TEST")))
    }

    /// Where the shipped copy of JapaneseVowels_{TRAIN,TEST}.ts lies.
    public static func japaneseVowelsPath(_ split: String) throws -> String {
        let file = "JapaneseVowels_\(split)"
        guard let url = Bundle.module.url(forResource: file, withExtension: "ts", subdirectory: "JapaneseVowels")
            ?? Bundle.module.url(forResource: file, withExtension: "ts") else {
            throw LowBitError.invalidFile(path: "\(file).ts", reason: "the embedded dataset is missing from LowBit's resource bundle (\(Bundle.module.bundlePath))")
        }
        return url.path
    }
}
