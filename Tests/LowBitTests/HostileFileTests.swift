import Foundation
import LowBit
import Testing

/// Damaged or extreme model files and data: each is one clear error naming the problem,
/// found before anything is allocated for it.
@Suite("Hostile files")
struct HostileFileTests {
    /// A small trained checkpoint's tensors and metadata, to damage.
    static let checkpoint = Result { () throws -> (tensors: [String: SafeTensors.Entry], metadata: [String: String]) in
        let (train, _) = try Datasets.japaneseVowels()
        let run = try ClassifierTraining(settings: TrainingSettings(mode: .int4, width: 8, layerCount: 1, headCount: 2, epochs: 1, seed: 1),
                                         train: train.subset(Array(0..<40)))
        try run.run(train: train.subset(Array(0..<40)), backend: KernelsBackend())
        let path = temporaryPath("hostile-source.safetensors")
        try run.save(to: path)
        return try SafeTensors.read(path)
    }

    func expectRefused(_ tensors: [String: SafeTensors.Entry], _ metadata: [String: String], _ text: String,
                       sourceLocation: SourceLocation = #_sourceLocation) throws {
        try expectLoadError(tensors, metadata, text, sourceLocation: sourceLocation) { _ = try ClassifierTraining(resumingFrom: $0) }
    }

    /// `metadata` with one key of the JSON object under `entry` replaced.
    func editing(_ metadata: [String: String], _ entry: String, _ edit: (inout [String: Any]) -> Void) throws -> [String: String] {
        var object = try JSONSerialization.jsonObject(with: Data(metadata[entry]!.utf8)) as! [String: Any]
        edit(&object)
        var m = metadata
        m[entry] = String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
        return m
    }

    @Test("sizes in a safetensors header that overflow: a shape of 2^62 × 2^62, offsets up to Int64.max")
    func overflowingHeader() throws {
        func file(_ header: String, body: Int) throws -> String {
            var json = Data(header.utf8)
            while json.count % 8 != 0 { json.append(0x20) }
            var n = UInt64(json.count).littleEndian
            let path = temporaryPath("overflow.safetensors")
            try (Data(bytes: &n, count: 8) + json + Data(count: body)).write(to: URL(fileURLWithPath: path))
            return path
        }
        let huge = try file(#"{"x": {"dtype": "F32", "shape": [4611686018427387904, 4611686018427387904], "data_offsets": [0, 4]}}"#, body: 4)
        let e1 = #expect(throws: LowBitError.self) { try SafeTensors.read(huge) }
        #expect("\(e1!)".contains("more bytes than any file holds"), "\(e1!)")
        let far = try file(#"{"x": {"dtype": "U8", "shape": [4], "data_offsets": [0, 9223372036854775807]}}"#, body: 4)
        let e2 = #expect(throws: LowBitError.self) { try SafeTensors.read(far) }
        #expect("\(e2!)".contains("truncated or corrupted"), "\(e2!)")
    }

    @Test("a flipped bit in a tensor is corruption, not a weight: files carry the CRC-32C of their tensor bytes")
    func checksum() throws {
        // The standard check value of CRC-32C: "123456789" → e3069283.
        let path = temporaryPath("crc-\(UUID().uuidString).safetensors")
        try SafeTensors.write(["x": SafeTensors.Entry(bytes: Array("123456789".utf8), shape: [9])], metadata: [:], to: path)
        #expect(try SafeTensors.read(path).metadata[SafeTensors.checksumKey] == "e3069283")

        let (t, m) = try Self.checkpoint.get()
        let good = temporaryPath("crc-\(UUID().uuidString).safetensors")
        try SafeTensors.write(t, metadata: m, to: good)
        _ = try ClassifierTraining(resumingFrom: good)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: good))
        var rng = TestRandom(5)
        for _ in 0..<5 {
            var flipped = bytes
            let at = bytes.count - 1 - Int(rng.next() % 4096)  // in the tensor bytes, which end the file
            flipped[at] ^= UInt8(1) << (rng.next() % 8)
            let broken = temporaryPath("crc-\(UUID().uuidString).safetensors")
            try flipped.write(to: URL(fileURLWithPath: broken))
            let error = #expect(throws: LowBitError.self) { try ClassifierTraining(resumingFrom: broken) }
            #expect("\(error!)".contains("CRC-32C"), "\(error!)")
        }
        // A file without a checksum (another tool's) is read as it is.
        var header = Data(#"{"x": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]}}"#.utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        var n = UInt64(header.count).littleEndian
        let foreign = temporaryPath("crc-\(UUID().uuidString).safetensors")
        try (Data(bytes: &n, count: 8) + header + Data([7, 9])).write(to: URL(fileURLWithPath: foreign))
        let read = try SafeTensors.read(foreign)
        #expect(read.tensors["x"]?.data == [7, 9] && read.metadata[SafeTensors.checksumKey] == nil)
    }

    @Test("model options beyond the limits or beyond what the file holds are refused before the model is built")
    func extremeOptions() throws {
        let (t, m) = try Self.checkpoint.get()
        let big = 1 << 62
        try expectRefused(t, try editing(m, "lowbit.options") { $0["hiddenSize"] = big }, "hiddenSize \(big) exceeds the limit")
        try expectRefused(t, try editing(m, "lowbit.options") { $0["windowSize"] = big }, "windowSize \(big) exceeds the limit")
        try expectRefused(t, try editing(m, "lowbit.options") { $0["embedDim"] = 1_000_000_000 }, "embedDim 1000000000 exceeds the limit")
        try expectRefused(t, try editing(m, "lowbit.options") { $0["numLayers"] = 10_000_000 }, "numLayers 10000000 exceeds the limit")
        // Within the limits, but far more weights than the file's bytes: refused without allocating them.
        try expectRefused(t, try editing(m, "lowbit.options") { $0["numLayers"] = 1000; $0["hiddenSize"] = 4096 }, "more than the file's")
        try expectRefused(t, m.merging(["lowbit.classes": "99999999999"]) { $1 }, "lowbit.classes is 99999999999")
        try expectRefused(t, m.merging(["lowbit.classes": "many"]) { $1 }, "'lowbit.classes' is missing or not an integer")
        try expectRefused(t, m.merging(["lowbit.options": "{"]) { $1 }, "'lowbit.options' is unreadable")
    }

    @Test("inconsistent metadata: repeated class names, a missing, misspelt or unknown layer entry, an unknown mode, a bad optimizer state")
    func inconsistentMetadata() throws {
        let (t, m) = try Self.checkpoint.get()
        try expectRefused(t, try editing(m, "lowbit.data") { $0["classNames"] = ["1", "2", "3", "4", "5", "6", "7", "8", "1"] },
                          "class names repeat ('1')")
        try expectRefused(t, try editing(m, "lowbit.data") { $0["modeName"] = "int3" }, "unknown mode 'int3'")
        let layers = try JSONSerialization.jsonObject(with: Data(m["lowbit.layers"]!.utf8)) as! [String: Any]
        let first = layers.keys.sorted()[0]
        try expectRefused(t, try editing(m, "lowbit.layers") { $0.removeValue(forKey: first) }, "no entry for layer '\(first)'")
        try expectRefused(t, try editing(m, "lowbit.layers") { $0["Blocks.0.attn.qkv"] = $0[first] }, "names 'Blocks.0.attn.qkv', which the model does not have")
        try expectRefused(t, try editing(m, "lowbit.layers") { o in
            var record = o[first] as! [String: Any]
            record["quantisation"] = record.removeValue(forKey: "quantization")
            o[first] = record
        }, "unknown key 'quantisation'")
        // Misspelt enum values are refused, not read as a default.
        for (key, value, message) in [("bound", ["name": "qmaxx"], "unknown ScaleBound 'qmaxx'"), ("backward", ["name": "int4"], "unknown BackwardPrecision 'int4'"),
                                      ("granularity", ["kind": "row"], "unknown granularity 'row'"), ("granularity", ["kind": "group"], "size")] {
            try expectRefused(t, try editing(m, "lowbit.layers") { o in
                var record = o[first] as! [String: Any], q = record["quantization"] as! [String: Any]
                q[key] = value
                record["quantization"] = q
                o[first] = record
            }, message)
        }
        try expectRefused(t, try editing(m, "lowbit.optimizer") { $0["step"] = -1 }, "invalid optimizer settings (step -1")
        var nan = t
        let moment = t.keys.sorted().first { $0.hasPrefix("optimizer.m.") }!
        nan[moment] = SafeTensors.Entry(floats: [Float](repeating: .nan, count: t[moment]!.shape.reduce(1, *)), shape: t[moment]!.shape)
        try expectRefused(nan, m, "optimizer moments of '\(moment.dropFirst("optimizer.m.".count))' hold NaN")
    }

    @Test("test data that does not fit the training data is refused before training, naming the file: channels, classes, overflow")
    func incompatibleTestData() throws {
        // Channel 1 barely varies: a large value divided by its deviation overflows.
        let train = try TimeSeriesDataset(name: "train", channels: 2, series: [[1, 2, 1.0001, 4], [1, 1, 1.0001, 3]], labels: [0, 1], classNames: ["a", "b"])
        let wide = try TimeSeriesDataset(name: "test", channels: 3, series: [[1, 2, 3]], labels: [0], classNames: ["a", "b"])
        let e1 = #expect(throws: LowBitError.self) { try wide.checkEvaluable(trainedOn: train, source: "T.ts") }
        #expect("\(e1!)".contains("T.ts") && "\(e1!)".contains("3 channels, the training data (train) has 2"), "\(e1!)")
        let stranger = try TimeSeriesDataset(name: "test", channels: 2, series: [[1, 2]], labels: [0], classNames: ["c"])
        let e2 = #expect(throws: LowBitError.self) { try stranger.checkEvaluable(trainedOn: train, source: "T.ts") }
        #expect("\(e2!)".contains("class 'c' does not occur in the training data"), "\(e2!)")
        let extreme = try TimeSeriesDataset(name: "test", channels: 2, series: [[1, 2, 1e36, 4]], labels: [1], classNames: ["a", "b"])
        let e3 = #expect(throws: LowBitError.self) { try extreme.checkEvaluable(trainedOn: train, source: "T.ts") }
        #expect("\(e3!)".contains("series 1, step 2") && "\(e3!)".contains("overflows once standardized"), "\(e3!)")
        let fine = try TimeSeriesDataset(name: "test", channels: 2, series: [[4, 3, 2, 1]], labels: [0], classNames: ["a"])
        try fine.checkEvaluable(trainedOn: train, source: "T.ts")
    }
}
