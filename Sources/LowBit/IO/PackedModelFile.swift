import Foundation
import LowBitKernels

/// The deployable form of a classifier: safetensors holding, for every quantized layer, its
/// packed low-bit codes ("NAME.packed", U8, in the layout of lowbit.h) and scales
/// ("NAME.scales", F32), every other parameter in float32, the static-range statistics, and
/// in the metadata the options, per-layer quantization, class names and standardization.
/// No latent float weights: the file is about `weightBytes` long.
///
/// An ensemble is one file too (format `lowbit-packed-2`): every model's tensors under
/// "members.I." (I from 0), its layers in "lowbit.layers.I", their count in "lowbit.members";
/// options and classes are shared. A single model keeps the first format, unchanged.
extension PackedClassifier {
    /// The `lowbit.format` metadata value of a file holding one model.
    public static let fileFormatVersion = "lowbit-packed-1"
    /// The `lowbit.format` metadata value of an ensemble file, each model's tensors under
    /// "members.I.".
    public static let ensembleFileFormatVersion = "lowbit-packed-2"

    /// Writes the packed model, every model of an ensemble, atomically to `path`, with `info`
    /// (stored in place of ``PackedClassifier/info``): codes and scales for the quantized
    /// layers, float32 for the rest, and no latent float weights.
    ///
    /// - Throws: ``LowBitError/invalidFile(path:reason:)`` if the file cannot be written.
    public func save(to path: String, info: ModelInfo) throws {
        var tensors: [String: SafeTensors.Entry] = [:]
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var metadata = try info.metadata()
        for (i, model) in members.enumerated() {
            let prefix = members.count == 1 ? "" : "members.\(i)."
            var own: [String: SafeTensors.Entry] = [:]
            let quantized = Set(model.quantizedLayers.map(\.weight.name))
            for p in model.parameters where !quantized.contains(p.name) { own[p.name] = SafeTensors.Entry(floats: p.value, shape: p.shape) }
            let layers = Checkpoint.saveLayers(model, into: &own)
            for l in model.quantizedLayers {
                let prepared = try l.preparedWeights(backend)
                guard let storage = prepared.storage as? PackedStorage else { throw LowBitError.invalidArgument("\(l.path) is not packed") }
                own[l.weight.name + ".packed"] = SafeTensors.Entry(bytes: storage.bytes, shape: [storage.bytes.count])
                own[l.weight.name + ".scales"] = SafeTensors.Entry(floats: prepared.quantized.scales, shape: [prepared.quantized.scales.count])
            }
            for (name, entry) in own { tensors[prefix + name] = entry }
            metadata["lowbit.layers" + (members.count == 1 ? "" : ".\(i)")] = String(decoding: try encoder.encode(layers), as: UTF8.self)
        }
        metadata["lowbit.format"] = members.count == 1 ? Self.fileFormatVersion : Self.ensembleFileFormatVersion
        if members.count > 1 { metadata["lowbit.members"] = String(members.count) }
        metadata["lowbit.options"] = String(decoding: try encoder.encode(configuration), as: UTF8.self)
        metadata["lowbit.classes"] = String(classes)
        try SafeTensors.write(tensors, metadata: metadata, to: path)
    }

    /// Whether `format` (a file's "lowbit.format") is one `load(from:backend:)` reads.
    public static func reads(format: String?) -> Bool { format == fileFormatVersion || format == ensembleFileFormatVersion }

    /// Loads a file written by ``save(to:info:)``, ready to run on `backend`. Every tensor must
    /// be present with its exact size and every code in its format's range.
    public static func load(from path: String, backend: KernelsBackend) throws -> (model: PackedClassifier, info: ModelInfo) {
        func bad(_ reason: String) -> LowBitError { .invalidFile(path: path, reason: reason) }
        let (tensors, metadata) = try SafeTensors.read(path)
        let format = metadata["lowbit.format"]
        guard reads(format: format) else {
            throw bad("not a LowBit packed model (format '\(format ?? "none")', expected \(fileFormatVersion) or \(ensembleFileFormatVersion))")
        }
        let info = try ModelInfo(metadata: metadata, path: path)
        guard format == ensembleFileFormatVersion else {
            return (PackedClassifier(packed: [try loadModel(tensors, metadata, info: info, backend: backend, path: path)], info: info, backend: backend), info)
        }
        guard let text = metadata["lowbit.members"], let count = Int(text), (1...16).contains(count) else {
            throw bad("an ensemble file needs 'lowbit.members', a count from 1 to 16 (got '\(metadata["lowbit.members"] ?? "none")')")
        }
        var members: [SequenceClassifier] = []
        for i in 0..<count {
            let prefix = "members.\(i)."
            guard let layers = metadata["lowbit.layers.\(i)"] else { throw bad("model \(i + 1) of \(count) has no 'lowbit.layers.\(i)' metadata") }
            var own: [String: SafeTensors.Entry] = [:]
            for (name, entry) in tensors where name.hasPrefix(prefix) { own[String(name.dropFirst(prefix.count))] = entry }
            var ownMetadata = metadata
            ownMetadata["lowbit.layers"] = layers
            do {
                members.append(try loadModel(own, ownMetadata, info: info, backend: backend, path: path))
            } catch LowBitError.invalidFile(_, let reason) {
                throw bad("model \(i + 1) of \(count): \(reason)")
            }
        }
        if let stray = tensors.keys.sorted().first(where: { name in !(0..<count).contains { name.hasPrefix("members.\($0).") } }) {
            throw bad("tensor '\(stray)' belongs to none of the \(count) models")
        }
        return (PackedClassifier(packed: members, info: info, backend: backend), info)
    }

    /// One model from its tensors (names without a prefix) and metadata.
    private static func loadModel(_ tensors: [String: SafeTensors.Entry], _ metadata: [String: String], info: ModelInfo,
                                  backend: KernelsBackend, path: String) throws -> SequenceClassifier {
        func bad(_ reason: String) -> LowBitError { .invalidFile(path: path, reason: reason) }
        let (model, layers, tensor) = try Checkpoint.skeleton(tensors, metadata, path: path)
        guard model.classes == info.classNames.count else { throw bad("\(model.classes) classes but \(info.classNames.count) class names") }
        let quantized = Dictionary(uniqueKeysWithValues: model.quantizedLayers.map { ($0.weight.name, $0) })
        for p in model.parameters {
            if let layer = quantized[p.name] {
                let q = layer.quantization!
                let (rows, cols) = (layer.outputs, layer.inputs)
                let granularity = q.weightGranularity
                let size = lowbit_packed_size(q.mode.format, Int64(rows), Int64(cols))
                let packed = try tensor(p.name + ".packed", [size]).bytes(p.name, path)
                let scales = try tensor(p.name + ".scales", [granularity.scaleCount(rows: rows, cols: cols)]).floats(p.name, path)
                guard scales.allSatisfy({ $0.isFinite && $0 >= 0 }) else { throw bad("'\(p.name).scales' holds a negative or non-finite scale") }
                var values = [Int8](repeating: 0, count: rows * cols)
                let status = lowbit_unpack(q.mode.format, packed, Int64(rows), Int64(cols), &values)
                guard status == LOWBIT_OK, q.mode == .int8 || values.allSatisfy({ Int($0).magnitude <= q.mode.qmax }) else {
                    throw bad("'\(p.name).packed' holds codes outside the \(q.mode.rawValue) range")
                }
                let weights = try QuantizedWeights(mode: q.mode, rows: rows, cols: cols, granularity: granularity, values: values, scales: scales)
                try layer.install(try backend.prepare(weights), backend: backend)
            } else {
                let values = try tensor(p.name, p.shape).floats(p.name, path)
                guard values.allSatisfy(\.isFinite) else { throw bad("tensor '\(p.name)' holds NaN or infinity") }
                p.value = values
            }
        }
        try Checkpoint.restoreLayers(model, layers, tensor: tensor, path: path)
        return model
    }
}
