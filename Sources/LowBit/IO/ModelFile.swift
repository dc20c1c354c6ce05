import Foundation

/// A model file as LowBit writes it: a packed model (`model.packed.safetensors`, one model
/// or an ensemble) or a training checkpoint (`checkpoint.safetensors`), told apart by the
/// format in its metadata.
public enum ModelFile {
    /// A packed model (`lowbit-packed-1`, or `lowbit-packed-2` for an ensemble), ready to run.
    case packed(PackedClassifier)
    /// A training checkpoint (`lowbit-checkpoint-1`), restored as a resumable training run.
    case checkpoint(ClassifierTraining)

    /// Reads the file at `url`; a file of neither format is `LowBitError.invalidFile`.
    public static func load(from url: URL, backend: KernelsBackend) throws -> ModelFile {
        let path = url.path
        let format = try SafeTensors.metadata(of: path)["lowbit.format"]   // the header only: the loader reads the rest
        if PackedClassifier.reads(format: format) { return .packed(try PackedClassifier.load(from: path, backend: backend).model) }
        if format == Checkpoint.formatVersion { return .checkpoint(try ClassifierTraining(resumingFrom: path)) }
        throw LowBitError.invalidFile(path: path, reason: "not a LowBit model: format '\(format ?? "none")', expected "
                                      + "\(PackedClassifier.fileFormatVersion), \(PackedClassifier.ensembleFileFormatVersion) or \(Checkpoint.formatVersion)")
    }

    /// Class names, standardization and steps per token.
    public var info: ModelInfo {
        switch self {
        case .packed(let p): p.info!
        case .checkpoint(let run): run.info
        }
    }

    /// The packed form (a checkpoint is packed on the way).
    public func packed(backend: KernelsBackend) throws -> PackedClassifier {
        switch self {
        case .packed(let p): p
        case .checkpoint(let run): try PackedClassifier(run.model, info: run.info, backend: backend)
        }
    }
}

extension PackedClassifier {
    /// Saves the packed model (with its class names and standardization) to `url`, atomically.
    public func save(to url: URL) throws {
        try save(to: url.path, info: try requireInfo())
    }

    /// Loads a packed model, or packs the model of a training checkpoint, from `url`.
    public static func load(from url: URL, backend: KernelsBackend? = nil) throws -> PackedClassifier {
        let backend = try backend ?? KernelsBackend()
        return try ModelFile.load(from: url, backend: backend).packed(backend: backend)
    }
}
