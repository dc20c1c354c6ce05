import Foundation
import LowBit

/// A model file as `eval` and `calibrate` take it: a packed model (model.packed.safetensors)
/// or a training checkpoint (checkpoint.safetensors), told apart by its metadata.
enum SavedModel {
    case packed(PackedClassifier, ModelInfo)
    case checkpoint(ClassifierTraining)

    static func load(_ path: String, kernels: KernelsBackend) throws -> SavedModel {
        let format = try SafeTensors.read(path).metadata["lowbit.format"]
        if PackedClassifier.reads(format: format) {
            let (model, info) = try PackedClassifier.load(from: path, backend: kernels)
            return .packed(model, info)
        }
        if format == Checkpoint.formatVersion { return .checkpoint(try ClassifierTraining(resumingFrom: path)) }
        throw LowBitError.invalidFile(path: path, reason: "not a LowBit model: format '\(format ?? "none")', expected \(PackedClassifier.fileFormatVersion), \(PackedClassifier.ensembleFileFormatVersion) or \(Checkpoint.formatVersion)")
    }

    var info: ModelInfo {
        switch self {
        case .packed(_, let info): info
        case .checkpoint(let run): run.info
        }
    }

    /// The packed form (a checkpoint is packed on the way).
    func packed(_ kernels: KernelsBackend) throws -> PackedClassifier {
        switch self {
        case .packed(let p, _): p
        case .checkpoint(let run): try PackedClassifier(run.model, backend: kernels)
        }
    }
}

/// Prints a confusion matrix with class names.
func confusionTable(_ e: Evaluation) -> String {
    let width = max(5, (e.classNames.map(\.count).max() ?? 1) + 1)
    var s = pad("true\\pred", width + 5)
    for c in e.classNames { s += pad(String(c.prefix(width - 1)), width) }
    s += "\n"
    for (i, row) in e.confusion.enumerated() {
        s += pad(String(e.classNames[i].prefix(width + 3)), width + 5)
        for v in row { s += pad(String(v), width) }
        s += "\n"
    }
    return s
}
