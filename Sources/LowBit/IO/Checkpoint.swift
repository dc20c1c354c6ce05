import Foundation

/// Saves and restores a ``SequenceClassifier`` with its training state as safetensors:
/// latent float weights (by parameter name), AdamW moments ("optimizer.m.NAME",
/// "optimizer.v.NAME"), static-range statistics ("NAME.activation_count",
/// "NAME.activation_sum_absmax"), and in the metadata the options, class count,
/// per-layer quantization, optimizer settings and any caller's entries.
public enum Checkpoint {
    /// The `lowbit.format` metadata value of a checkpoint; ``Checkpoint/load(from:)`` refuses any
    /// other.
    public static let formatVersion = "lowbit-checkpoint-1"

    /// Writes `model`, and `optimizer`'s step, settings and moments when given, to `path`
    /// atomically. The caller's `metadata` entries are stored too, except where LowBit's own
    /// `lowbit.*` keys replace them.
    ///
    /// - Throws: ``LowBitError/invalidFile(path:reason:)`` if the file cannot be written.
    public static func save(_ model: SequenceClassifier, optimizer: AdamW? = nil, to path: String,
                            metadata extra: [String: String] = [:]) throws {
        var tensors: [String: SafeTensors.Entry] = [:]
        for p in model.parameters { tensors[p.name] = SafeTensors.Entry(floats: p.value, shape: p.shape) }
        let layers = saveLayers(model, into: &tensors)
        var metadata = extra
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        metadata["lowbit.format"] = formatVersion
        metadata["lowbit.options"] = String(decoding: try encoder.encode(model.configuration), as: UTF8.self)
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
        let (model, layers, lookup) = try skeleton(tensors, metadata, path: path)
        var read = Set<String>()
        let tensor = { (name: String, shape: [Int]) throws -> SafeTensors.Entry in
            read.insert(name)
            return try lookup(name, shape)
        }
        for p in model.parameters {
            let values = try tensor(p.name, p.shape).floats(p.name, path)
            guard values.allSatisfy(\.isFinite) else { throw bad("tensor '\(p.name)' holds NaN or infinity") }
            p.value = values
        }
        try restoreLayers(model, layers, tensor: tensor, path: path)
        var optimizer: AdamW?
        if let text = metadata["lowbit.optimizer"] {
            guard let r = try? decoder.decode(OptimizerRecord.self, from: Data(text.utf8)) else { throw bad("unreadable optimizer settings") }
            guard r.step >= 0, [r.learningRate, r.beta1, r.beta2, r.epsilon, r.weightDecay].allSatisfy({ $0.isFinite && $0 >= 0 }),
                  r.beta1 < 1, r.beta2 < 1, r.epsilon > 0 else {
                throw bad("invalid optimizer settings (step \(r.step), learning rate \(r.learningRate), betas \(r.beta1) and \(r.beta2), "
                          + "epsilon \(r.epsilon), weight decay \(r.weightDecay))")
            }
            let o = AdamW(learningRate: r.learningRate, beta1: r.beta1, beta2: r.beta2, epsilon: r.epsilon, weightDecay: r.weightDecay)
            o.step = r.step
            for p in model.parameters where tensors["optimizer.m." + p.name] != nil || r.step > 0 {
                let m = try tensor("optimizer.m." + p.name, p.shape).floats(p.name, path)
                let v = try tensor("optimizer.v." + p.name, p.shape).floats(p.name, path)
                guard m.allSatisfy(\.isFinite), v.allSatisfy({ $0.isFinite && $0 >= 0 }) else {
                    throw bad("the optimizer moments of '\(p.name)' hold NaN, infinity or a negative second moment")
                }
                o.firstMoment[p.name] = m
                o.secondMoment[p.name] = v
            }
            optimizer = o
        }
        // A tensor the model does not read would be a silently different model or state.
        if let extra = tensors.keys.sorted().first(where: { !read.contains($0) }) {
            throw bad("it holds tensor '\(extra)', which the model its metadata describes does not have")
        }
        return (model, optimizer, metadata)
    }

    /// The model the metadata describes (options, classes, per-layer quantization) with its
    /// weights not yet loaded, and a lookup that checks a tensor's presence and shape.
    static func skeleton(_ tensors: [String: SafeTensors.Entry], _ metadata: [String: String], path: String) throws
        -> (model: SequenceClassifier, layers: [String: LayerRecord], tensor: (String, [Int]) throws -> SafeTensors.Entry) {
        func bad(_ reason: String) -> LowBitError { .invalidFile(path: path, reason: reason) }
        let decoder = JSONDecoder()
        func read<T: Decodable>(_ type: T.Type, _ key: String) throws -> T {
            guard let text = metadata[key] else { throw bad("the metadata lacks '\(key)'") }
            do { return try decoder.decode(type, from: Data(text.utf8)) } catch {
                throw bad("'\(key)' is unreadable: \(Self.describe(error))")
            }
        }
        let options = try read(EncoderConfiguration.self, "lowbit.options")
        guard let classes = metadata["lowbit.classes"].flatMap(Int.init) else {
            throw bad("'lowbit.classes' is missing or not an integer (\(metadata["lowbit.classes"] ?? "none"))")
        }
        let layers = try read([String: LayerRecord].self, "lowbit.layers")
        // Sizes from the file are checked before the model is allocated: against the limits,
        // and against the file itself, which holds every weight in at least one bit.
        do { try options.validate() } catch LowBitError.invalidArgument(let why) { throw bad("its options are invalid: \(why)") }
        guard classes >= 2, classes <= EncoderConfiguration.Limits.classes else {
            throw bad("lowbit.classes is \(classes): a model has from 2 to \(EncoderConfiguration.Limits.classes) classes")
        }
        let fileBytes = tensors.values.reduce(0.0) { $0 + Double($1.data.count) }
        guard options.weightCount(classes: classes) / 8 <= fileBytes else {
            throw bad("its options describe a model of \(Int(options.weightCount(classes: classes))) weights, more than the file's "
                      + "\(Int(fileBytes)) bytes of tensors hold")
        }
        let rules = layers.keys.sorted().map { QuantizationRule($0, layers[$0]!.quantization) }
        let model = try SequenceClassifier(options, classes: classes, rules: rules)
        // Every quantizable layer has its entry, and no entry names another layer: a missing
        // or misspelt one would otherwise leave that layer float, a silently different model.
        let expected = Set(model.encoder.linears.filter(\.quantizable).map(\.path))
        if let missing = expected.sorted().first(where: { layers[$0] == nil }) {
            throw bad("lowbit.layers has no entry for layer '\(missing)'")
        }
        if let unknown = layers.keys.sorted().first(where: { !expected.contains($0) }) {
            throw bad("lowbit.layers names '\(unknown)', which the model does not have")
        }
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

    /// A decoding error in a few words: what was wrong and where.
    static func describe(_ error: any Error) -> String {
        func at(_ c: DecodingError.Context) -> String {
            let path = c.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? c.debugDescription : "\(path): \(c.debugDescription)"
        }
        switch error as? DecodingError {
        case .dataCorrupted(let c)?: return at(c)
        case .keyNotFound(_, let c)?, .typeMismatch(_, let c)?, .valueNotFound(_, let c)?: return at(c)
        default: return "\(error)"
        }
    }

    struct LayerRecord: Codable {
        var quantization: LayerQuantization?
        var staticRange: Bool

        init(quantization: LayerQuantization?, staticRange: Bool) {
            self.quantization = quantization
            self.staticRange = staticRange
        }

        /// Refuses keys it does not know: a float layer is written without `quantization`,
        /// so a misspelt key would otherwise read as a float layer.
        init(from decoder: any Decoder) throws {
            let any = try decoder.container(keyedBy: AnyKey.self)
            if let unknown = any.allKeys.first(where: { CodingKeys(stringValue: $0.stringValue) == nil }) {
                throw DecodingError.dataCorruptedError(forKey: unknown, in: any, debugDescription: "unknown key '\(unknown.stringValue)'")
            }
            let c = try decoder.container(keyedBy: CodingKeys.self)
            self.init(quantization: try c.decodeIfPresent(LayerQuantization.self, forKey: .quantization),
                      staticRange: try c.decode(Bool.self, forKey: .staticRange))
        }

        private struct AnyKey: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }
    }

    struct OptimizerRecord: Codable {
        var step: Int
        var learningRate, beta1, beta2, epsilon, weightDecay: Float
    }
}
