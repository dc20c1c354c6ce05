import Foundation
import LowBitKernels

/// The deployable form of a classifier: safetensors holding, for every quantized layer, its
/// packed low-bit codes ("NAME.packed", U8, in the layout of lowbit.h) and scales
/// ("NAME.scales", F32), every other parameter in float32, the static-range statistics, and
/// in the metadata the options, per-layer quantization, class names and standardization.
/// No latent float weights: the file is about `weightBytes` long.
extension PackedClassifier {
    public static let fileFormatVersion = "lowbit-packed-1"

    public func save(to path: String, info: ModelInfo) throws {
        var tensors: [String: SafeTensors.Entry] = [:]
        let quantized = Set(model.quantizedLayers.map(\.weight.name))
        for p in model.parameters where !quantized.contains(p.name) { tensors[p.name] = SafeTensors.Entry(floats: p.value, shape: p.shape) }
        let layers = Checkpoint.saveLayers(model, into: &tensors)
        for l in model.quantizedLayers {
            let prepared = try l.preparedWeights(backend)
            guard let storage = prepared.storage as? PackedStorage else { throw LowBitError.invalidArgument("\(l.path) is not packed") }
            tensors[l.weight.name + ".packed"] = SafeTensors.Entry(bytes: storage.bytes, shape: [storage.bytes.count])
            tensors[l.weight.name + ".scales"] = SafeTensors.Entry(floats: prepared.quantized.scales, shape: [prepared.quantized.scales.count])
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var metadata = try info.metadata()
        metadata["lowbit.format"] = Self.fileFormatVersion
        metadata["lowbit.options"] = String(decoding: try encoder.encode(model.options), as: UTF8.self)
        metadata["lowbit.classes"] = String(model.classes)
        metadata["lowbit.layers"] = String(decoding: try encoder.encode(layers), as: UTF8.self)
        try SafeTensors.write(tensors, metadata: metadata, to: path)
    }

    /// Loads a file written by ``save(to:info:)``, ready to run on `backend`. Every tensor must
    /// be present with its exact size and every code in its format's range.
    public static func load(from path: String, backend: KernelsBackend) throws -> (model: PackedClassifier, info: ModelInfo) {
        func bad(_ reason: String) -> LowBitError { .invalidFile(path: path, reason: reason) }
        let (tensors, metadata) = try SafeTensors.read(path)
        guard metadata["lowbit.format"] == fileFormatVersion else {
            throw bad("not a LowBit packed model (format '\(metadata["lowbit.format"] ?? "none")', expected \(fileFormatVersion))")
        }
        let info = try ModelInfo(metadata: metadata, path: path)
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
        return (PackedClassifier(packed: model, backend: backend), info)
    }
}
