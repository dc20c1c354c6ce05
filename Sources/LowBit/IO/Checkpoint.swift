import Foundation

/// Saves and restores a ``SequenceClassifier`` with its training state as safetensors:
/// latent float weights (by parameter name), AdamW moments ("optimizer.m.NAME",
/// "optimizer.v.NAME"), static-range statistics ("NAME.activation_count",
/// "NAME.activation_sum_absmax"), and in the metadata the options, class count,
/// per-layer quantization, optimizer settings and any caller's entries.
public enum Checkpoint {
    public static let formatVersion = "lowbit-checkpoint-1"

    public static func save(_ model: SequenceClassifier, optimizer: AdamW? = nil, to path: String,
                            metadata extra: [String: String] = [:]) throws {
        var tensors: [String: SafeTensors.Entry] = [:]
        for p in model.parameters { tensors[p.name] = SafeTensors.Entry(floats: p.value, shape: p.shape) }
        let layers = saveLayers(model, into: &tensors)
        var metadata = extra
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        metadata["lowbit.format"] = formatVersion
        metadata["lowbit.options"] = String(decoding: try encoder.encode(model.options), as: UTF8.self)
        metadata["lowbit.classes"] = String(model.classes)
        metadata["lowbit.layers"] = String(decoding: try encoder.encode(layers), as: UTF8.self)
        if let o = optimizer {
            for p in model.parameters {
                if let m = o.firstMoment[p.name], let v = o.secondMoment[p.name] {
                    tensors["optimizer.m." + p.name] = SafeTensors.Entry(floats: m, shape: p.shape)
                    tensors["optimizer.v." + p.name] = SafeTensors.Entry(floats: v, shape: p.shape)
                }
            }
            metadata["lowbit.optimizer"] = String(decoding: try encoder.encode(
                OptimizerRecord(step: o.step, learningRate: o.learningRate, beta1: o.beta1, beta2: o.beta2,
                                epsilon: o.epsilon, weightDecay: o.weightDecay)), as: UTF8.self)
        }
        try SafeTensors.write(tensors, metadata: metadata, to: path)
    }

    /// The model (and optimizer, if the file has one) saved at `path`. Every tensor the model
    /// needs must be present with its exact shape; anything else is an error naming it.
    public static func load(from path: String) throws -> (model: SequenceClassifier, optimizer: AdamW?, metadata: [String: String]) {
        func bad(_ reason: String) -> LowBitError { .invalidFile(path: path, reason: reason) }
        let (tensors, metadata) = try SafeTensors.read(path)
        guard metadata["lowbit.format"] == formatVersion else {
            throw bad("not a LowBit checkpoint (format '\(metadata["lowbit.format"] ?? "none")', expected \(formatVersion))")
        }
        let decoder = JSONDecoder()
        let (model, layers, tensor) = try skeleton(tensors, metadata, path: path)
        for p in model.parameters {
            let values = try tensor(p.name, p.shape).floats(p.name, path)
            guard values.allSatisfy(\.isFinite) else { throw bad("tensor '\(p.name)' holds NaN or infinity") }
            p.value = values
        }
        try restoreLayers(model, layers, tensor: tensor, path: path)
        var optimizer: AdamW?
        if let text = metadata["lowbit.optimizer"] {
            guard let r = try? decoder.decode(OptimizerRecord.self, from: Data(text.utf8)) else { throw bad("unreadable optimizer settings") }
            let o = AdamW(learningRate: r.learningRate, beta1: r.beta1, beta2: r.beta2, epsilon: r.epsilon, weightDecay: r.weightDecay)
            o.step = r.step
            for p in model.parameters where tensors["optimizer.m." + p.name] != nil {
                o.firstMoment[p.name] = try tensor("optimizer.m." + p.name, p.shape).floats(p.name, path)
                o.secondMoment[p.name] = try tensor("optimizer.v." + p.name, p.shape).floats(p.name, path)
            }
            optimizer = o
        }
        return (model, optimizer, metadata)
    }

    /// The model the metadata describes (options, classes, per-layer quantization) with its
    /// weights not yet loaded, and a lookup that checks a tensor's presence and shape.
    static func skeleton(_ tensors: [String: SafeTensors.Entry], _ metadata: [String: String], path: String) throws
        -> (model: SequenceClassifier, layers: [String: LayerRecord], tensor: (String, [Int]) throws -> SafeTensors.Entry) {
        func bad(_ reason: String) -> LowBitError { .invalidFile(path: path, reason: reason) }
        let decoder = JSONDecoder()
        guard let optionsText = metadata["lowbit.options"], let options = try? decoder.decode(EncoderOptions.self, from: Data(optionsText.utf8)),
              let classes = metadata["lowbit.classes"].flatMap(Int.init),
              let layersText = metadata["lowbit.layers"], let layers = try? decoder.decode([String: LayerRecord].self, from: Data(layersText.utf8)) else {
            throw bad("the metadata lacks readable options, classes or layers")
        }
        let rules = layers.keys.sorted().map { QuantizationRule($0, layers[$0]!.quantization) }
        let model = try SequenceClassifier(options, classes: classes, rules: rules)
        let tensor = { (name: String, shape: [Int]) throws -> SafeTensors.Entry in
            guard let e = tensors[name] else { throw bad("missing tensor '\(name)'") }
            guard e.shape == shape else { throw bad("tensor '\(name)' has shape \(e.shape), the model expects \(shape)") }
            return e
        }
        return (model, layers, tensor)
    }

    /// Each quantizable layer's quantization and static-range flag (returned, for the
    /// metadata) and its activation statistics (added to `tensors`).
    static func saveLayers(_ model: SequenceClassifier, into tensors: inout [String: SafeTensors.Entry]) -> [String: LayerRecord] {
        var layers: [String: LayerRecord] = [:]
        for l in model.encoder.linears where l.quantizable {
            layers[l.path] = LayerRecord(quantization: l.quantization, staticRange: l.usesStaticRange)
            tensors[l.path + ".activation_count"] = SafeTensors.Entry(int64s: [Int64(l.statistics.count)], shape: [1])
            tensors[l.path + ".activation_sum_absmax"] = SafeTensors.Entry(doubles: [l.statistics.sumOfAbsmax], shape: [1])
        }
        return layers
    }

    /// The inverse of ``saveLayers(_:into:)``: statistics and static ranges, validated.
    static func restoreLayers(_ model: SequenceClassifier, _ layers: [String: LayerRecord],
                              tensor: (String, [Int]) throws -> SafeTensors.Entry, path: String) throws {
        func bad(_ reason: String) -> LowBitError { .invalidFile(path: path, reason: reason) }
        for l in model.encoder.linears where l.quantizable {
            let count = try tensor(l.path + ".activation_count", [1]).int64s(l.path, path)[0]
            let sum = try tensor(l.path + ".activation_sum_absmax", [1]).doubles(l.path, path)[0]
            guard count >= 0, sum.isFinite, sum >= 0 else { throw bad("\(l.path) has invalid activation statistics") }
            l.statistics = ActivationStatistics(count: Int(count), sumOfAbsmax: sum)
            if layers[l.path]?.staticRange == true {
                guard count > 0 else { throw bad("\(l.path) uses a static range but has no statistics") }
                l.usesStaticRange = true
            }
        }
    }

    struct LayerRecord: Codable {
        var quantization: LayerQuantization?
        var staticRange: Bool
    }

    struct OptimizerRecord: Codable {
        var step: Int
        var learningRate, beta1, beta2, epsilon, weightDecay: Float
    }
}
