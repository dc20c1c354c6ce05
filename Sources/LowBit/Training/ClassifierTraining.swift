import Foundation

/// What `lowbit train` varies: the model's shape and mode, the optimisation schedule and
/// regularisation. Saved in every checkpoint, so that a resumed run continues the same one.
public struct TrainingSettings: Sendable, Equatable, Codable {
    /// Weight quantization of the encoder blocks; nil trains in float.
    public var mode: QuantizationMode?
    /// Quantized (int8) backward matmuls: QT instead of QAT.
    public var quantizedBackward: Bool
    /// Quantization-aware fine-tuning: the run starts from a trained float model's weights
    /// (given to ``ClassifierTraining/init(settings:train:windowSize:startingFrom:)``)
    /// instead of a random initialisation.
    public var startsFromFloat: Bool
    /// Learning from a trained float model's predictions as well as from the labels (given
    /// to ``ClassifierTraining/run(train:evaluation:teacher:backend:checkpointPath:evaluationInterval:progress:shouldStop:)``);
    /// nil learns from the labels alone.
    public var distillation: Distillation?
    /// Steps per token: the encoder reads non-overlapping patches of this many steps (all
    /// their channels' values) instead of one step at a time, which gives a univariate
    /// series' tokens something to say and keeps attention over a long series short. The
    /// default of `lowbit train` depends on the series' length and channels
    /// (``TrainingRecipe/patchLength(maxLength:channels:)``).
    public var patchLength: Int
    public var hiddenSize: Int
    public var numLayers: Int
    public var numHeads: Int
    /// A sinusoidal encoding of each step's position added to the encoder's input. On by
    /// default: it took validation errors away in every mode (see docs/japanesevowels.md), although
    /// causal attention sees order without it.
    public var positionalEncoding: Bool
    public var dropout: Float
    /// Random crops, scaling and noise of the training series (none by default).
    public var augmentation: Augmentation
    public var epochs: Int
    public var batchSize: Int
    /// Peak learning rate, reached after `warmupEpochs` and decayed by a cosine to
    /// `finalLearningRateFraction` of it at the last step.
    public var learningRate: Float
    public var warmupEpochs: Int
    public var finalLearningRateFraction: Float
    public var weightDecay: Float
    public var maxGradientNorm: Float
    /// Seeds initialisation, dropout and the order of the batches.
    public var seed: UInt64
    /// How many models `lowbit train` trains per mode, each a run of these settings with its
    /// own seed (``member(_:)``), and averages (their predicted probabilities) in the packed
    /// model. Two by default: on validation splits the pair made fewer errors and a lower
    /// cross-entropy than either model in every mode (see docs/japanesevowels.md). One
    /// ``ClassifierTraining`` trains one of them.
    public var ensembleSize: Int

    /// The defaults of `lowbit train`, chosen on a validation split held out of
    /// JapaneseVowels' training split (see docs/japanesevowels.md).
    public init(mode: QuantizationMode? = nil, quantizedBackward: Bool = false, startsFromFloat: Bool = false,
                distillation: Distillation? = nil, patchLength: Int = 1, hiddenSize: Int = 64, numLayers: Int = 3,
                numHeads: Int = 4, positionalEncoding: Bool = true, dropout: Float = 0.2,
                augmentation: Augmentation = Augmentation(), epochs: Int = 40, batchSize: Int = 16, learningRate: Float = 2e-3,
                warmupEpochs: Int = 2, finalLearningRateFraction: Float = 0.05, weightDecay: Float = 0.05,
                maxGradientNorm: Float = 1, seed: UInt64 = 0, ensembleSize: Int = 2) {
        self.mode = mode
        self.quantizedBackward = quantizedBackward
        self.startsFromFloat = startsFromFloat
        self.distillation = distillation
        self.patchLength = patchLength
        self.hiddenSize = hiddenSize
        self.numLayers = numLayers
        self.numHeads = numHeads
        self.positionalEncoding = positionalEncoding
        self.dropout = dropout
        self.augmentation = augmentation
        self.epochs = epochs
        self.batchSize = batchSize
        self.learningRate = learningRate
        self.warmupEpochs = warmupEpochs
        self.finalLearningRateFraction = finalLearningRateFraction
        self.weightDecay = weightDecay
        self.maxGradientNorm = maxGradientNorm
        self.seed = seed
        self.ensembleSize = ensembleSize
    }

    /// The settings of the ensemble's model `index` (from 0): these, with a seed of its own.
    /// Model 0 keeps `seed`, so an ensemble of one is the run these settings describe.
    public func member(_ index: Int) -> TrainingSettings {
        var s = self
        s.seed = seed &+ UInt64(index) &* 0x9E37_79B9_7F4A_7C15
        return s
    }

    /// Throws an error naming the first setting that cannot train.
    public func validate() throws {
        func bad(_ m: String) -> LowBitError { .invalidArgument(m) }
        guard epochs > 0 else { throw bad("epochs must be positive, got \(epochs)") }
        guard batchSize > 0 else { throw bad("batch size must be positive, got \(batchSize)") }
        guard patchLength > 0 else { throw bad("patch length must be positive, got \(patchLength)") }
        try augmentation.validate()
        guard learningRate > 0, learningRate.isFinite else { throw bad("learning rate must be positive and finite, got \(learningRate)") }
        guard warmupEpochs >= 0 else { throw bad("warmup epochs must be non-negative, got \(warmupEpochs)") }
        guard (0...1).contains(finalLearningRateFraction) else { throw bad("final learning-rate fraction must be in [0, 1], got \(finalLearningRateFraction)") }
        guard weightDecay >= 0, weightDecay.isFinite else { throw bad("weight decay must be non-negative, got \(weightDecay)") }
        guard maxGradientNorm > 0 else { throw bad("gradient clipping norm must be positive, got \(maxGradientNorm)") }
        guard (1...16).contains(ensembleSize) else { throw bad("ensemble size must be from 1 to 16, got \(ensembleSize)") }
        if quantizedBackward && mode == nil { throw bad("a quantized backward (QT) needs a quantized mode, not float") }
        if startsFromFloat && mode == nil { throw bad("starting from the float model needs a quantized mode, not float") }
        if let distillation {
            guard mode != nil else { throw bad("distillation from the float model needs a quantized mode, not float") }
            try distillation.validate()
        }
    }

    /// Quantization-aware fine-tuning in `mode` of the float model these settings train: the
    /// same model and regularisation, half the epochs (at least one), one warmup epoch, and a
    /// peak learning rate that grows with how far the mode starts from float: an eighth of
    /// the float run's for int8 and int4, which start almost where float ended (more only
    /// trains float further, past its best), half for ternary and binary, which must adapt.
    /// Chosen on validation splits of JapaneseVowels' training data (see docs/japanesevowels.md).
    public func fineTuning(_ mode: QuantizationMode, quantizedBackward: Bool = false) -> TrainingSettings {
        var s = self
        s.mode = mode
        s.quantizedBackward = quantizedBackward
        s.startsFromFloat = true
        s.epochs = max(epochs / 2, 1)
        switch mode {
        case .int8, .int4: s.learningRate = learningRate / 8
        case .ternary, .binary: s.learningRate = learningRate / 2
        }
        s.warmupEpochs = min(warmupEpochs, 1)
        return s
    }

    /// Optimizer steps per epoch on `trainCount` series.
    public func stepsPerEpoch(_ trainCount: Int) -> Int { (trainCount + batchSize - 1) / batchSize }

    /// "float", or the quantization mode's name (with "+qt" for a quantized backward).
    public var modeName: String { (mode?.rawValue ?? "float") + (quantizedBackward ? "+qt" : "") }

    /// Decodes settings saved before `startsFromFloat`, `distillation`, `positionalEncoding`,
    /// `ensembleSize`, `patchLength` and `augmentation` existed as what those runs did: starting
    /// from scratch, without a teacher, without positions, one model, one step per token, no
    /// augmentation.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(mode: try c.decodeIfPresent(QuantizationMode.self, forKey: .mode),
                  quantizedBackward: try c.decode(Bool.self, forKey: .quantizedBackward),
                  startsFromFloat: try c.decodeIfPresent(Bool.self, forKey: .startsFromFloat) ?? false,
                  distillation: try c.decodeIfPresent(Distillation.self, forKey: .distillation),
                  patchLength: try c.decodeIfPresent(Int.self, forKey: .patchLength) ?? 1,
                  hiddenSize: try c.decode(Int.self, forKey: .hiddenSize), numLayers: try c.decode(Int.self, forKey: .numLayers),
                  numHeads: try c.decode(Int.self, forKey: .numHeads),
                  positionalEncoding: try c.decodeIfPresent(Bool.self, forKey: .positionalEncoding) ?? false,
                  dropout: try c.decode(Float.self, forKey: .dropout),
                  augmentation: try c.decodeIfPresent(Augmentation.self, forKey: .augmentation) ?? Augmentation(),
                  epochs: try c.decode(Int.self, forKey: .epochs), batchSize: try c.decode(Int.self, forKey: .batchSize),
                  learningRate: try c.decode(Float.self, forKey: .learningRate),
                  warmupEpochs: try c.decode(Int.self, forKey: .warmupEpochs),
                  finalLearningRateFraction: try c.decode(Float.self, forKey: .finalLearningRateFraction),
                  weightDecay: try c.decode(Float.self, forKey: .weightDecay),
                  maxGradientNorm: try c.decode(Float.self, forKey: .maxGradientNorm), seed: try c.decode(UInt64.self, forKey: .seed),
                  ensembleSize: try c.decodeIfPresent(Int.self, forKey: .ensembleSize) ?? 1)
    }
}

/// How a quantized run learns from the float model (knowledge distillation): see
/// ``Loss/distillation(logits:labels:teacherLogits:weight:temperature:)``.
public struct Distillation: Sendable, Equatable, Codable {
    /// The share of the teacher's soft predictions in the loss; the labels get the rest.
    public var weight: Float
    /// Softens both distributions, so that the teacher's near misses carry weight.
    public var temperature: Float

    public init(weight: Float = 0.5, temperature: Float = 2) {
        self.weight = weight
        self.temperature = temperature
    }

    public func validate() throws {
        guard weight > 0, weight <= 1 else { throw LowBitError.invalidArgument("distillation weight must be in (0, 1], got \(weight)") }
        guard temperature > 0, temperature.isFinite else {
            throw LowBitError.invalidArgument("distillation temperature must be positive and finite, got \(temperature)")
        }
    }
}

/// One epoch of a run, as plotted and written to the metrics file.
public struct EpochRecord: Sendable, Equatable, Codable {
    public var epoch: Int
    public var step: Int
    public var trainLoss: Float
    public var trainAccuracy: Double
    /// On the evaluation split, when one is given.
    public var evaluationLoss: Float?
    public var evaluationAccuracy: Double?
    /// On the selection split (see ``CheckpointSelection``), when the run selects one.
    public var selectionLoss: Float?
    public var selectionAccuracy: Double?
    /// Training time so far, evaluation excluded.
    public var seconds: Double
}

/// Where a run is, reported after every step.
public struct TrainingProgress: Sendable {
    public var epoch: Int, epochs: Int
    public var step: Int, steps: Int
    public var loss: Float
    /// Of this epoch's steps so far.
    public var accuracy: Double
    public var stepsPerSecond: Double
    public var secondsRemaining: Double
}

/// A classifier training run on a time-series dataset: the model, its optimizer, the
/// standardization fitted on the training data, the class list and the history, with
/// checkpoints that resume the run exactly (same batches, same dropout masks).
public final class ClassifierTraining {
    public let settings: TrainingSettings
    public let model: SequenceClassifier
    public let optimizer: AdamW
    public let standardization: ChannelStandardization
    public let classNames: [String]
    public private(set) var history: [EpochRecord] = []
    /// Training seconds of the steps already taken (carried over by a resume).
    public private(set) var trainSeconds: Double = 0
    /// The current epoch's running sums (loss · examples, correct, examples).
    private var epochSums = EpochSums()

    struct EpochSums: Codable { var loss = 0.0, correct = 0, seen = 0 }

    /// A fresh run. `windowSize` is the longest sequence, in steps, the model will accept
    /// (default: the longest training sequence; longer ones keep their last steps). When the settings
    /// start from float, `source` is the trained float model whose weights the run starts
    /// from: same shape, same classes, trained on the same data (its standardization).
    public init(settings: TrainingSettings, train: TimeSeriesDataset, windowSize: Int? = nil,
                startingFrom source: ClassifierTraining? = nil) throws {
        try settings.validate()
        guard train.classNames.count >= 2 else {
            throw LowBitError.invalidArgument("\(train.name): a classifier needs at least 2 classes, the training data has \(train.classNames.count)")
        }
        switch (settings.startsFromFloat, source) {
        case (true, nil): throw LowBitError.invalidArgument("\(settings.modeName) starts from the float model, but none was given")
        case (false, _?): throw LowBitError.invalidArgument("\(settings.modeName) starts from scratch, but a model to start from was given")
        default: break
        }
        let (features, tokens) = try TrainingRecipe.tokenShape(channels: train.channels, steps: windowSize ?? train.maxLength,
                                                                patchLength: settings.patchLength, name: train.name)
        let options = EncoderOptions(embedDim: features, hiddenSize: settings.hiddenSize, numHeads: settings.numHeads,
                                     numLayers: settings.numLayers, quantize: settings.mode, dropout: settings.dropout,
                                     windowSize: tokens,
                                     positionalEncoding: settings.positionalEncoding, seed: settings.seed)
        let rules = settings.mode.map { mode in
            [QuantizationRule("*", LayerQuantization(mode: mode, backward: settings.quantizedBackward ? .int8 : .float,
                                                     stochasticRoundingSeed: settings.quantizedBackward ? settings.seed : nil))]
        }
        self.settings = settings
        model = try SequenceClassifier(options, classes: train.classNames.count, rules: rules)
        optimizer = AdamW(learningRate: settings.learningRate, weightDecay: settings.weightDecay)
        standardization = ChannelStandardization(fitting: train)
        classNames = train.classNames
        if let source { try start(from: source, train: train) }
    }

    /// Copies the float run's weights into this run's model, after checking that they fit.
    private func start(from source: ClassifierTraining, train: TimeSeriesDataset) throws {
        func refuse(_ why: String) -> LowBitError { .invalidArgument("cannot start \(settings.modeName) from the float model: \(why)") }
        try checkFloatModel(source, train: train, refuse: refuse)
        let (a, b) = (source.model.options, model.options)
        guard (a.hiddenSize, a.numHeads, a.numLayers) == (b.hiddenSize, b.numHeads, b.numLayers) else {
            throw refuse("it has hidden size \(a.hiddenSize), \(a.numHeads) heads and \(a.numLayers) layers; "
                         + "this run has \(b.hiddenSize), \(b.numHeads) and \(b.numLayers)")
        }
        guard a.positionalEncoding == b.positionalEncoding else {
            throw refuse("it was trained \(a.positionalEncoding ? "with" : "without") a positional encoding, this run is \(b.positionalEncoding ? "with" : "without") one")
        }
        try copyParameters(from: source.model) { refuse("it has no parameter \($0)") }
    }

    /// Sets every parameter of the model to the same-named one of `other`; `missing` makes the
    /// error for a parameter `other` lacks, or has in another shape ("NAME of shape S").
    private func copyParameters(from other: SequenceClassifier, missing: (String) -> LowBitError) throws {
        let byName = Dictionary(uniqueKeysWithValues: other.parameters.map { ($0.name, $0) })
        for p in model.parameters {
            guard let q = byName[p.name], q.shape == p.shape else { throw missing("\(p.name) of shape \(p.shape)") }
            p.value = q.value
        }
    }

    /// Checks that `source` is a finished float run that classifies the same inputs into the
    /// same classes as this run, on the same data (its standardization): what starting from
    /// it and learning from it both need.
    private func checkFloatModel(_ source: ClassifierTraining, train: TimeSeriesDataset,
                                 refuse: (String) -> LowBitError) throws {
        guard source.settings.mode == nil else { throw refuse("the model given is \(source.settings.modeName), not float") }
        let (a, b) = (source.model.options, model.options)
        guard a.embedDim == b.embedDim else { throw refuse("it has \(a.embedDim) inputs, this run \(b.embedDim)") }
        guard a.windowSize >= b.windowSize else { throw refuse("it takes sequences up to \(a.windowSize) steps, this run \(b.windowSize)") }
        guard source.classNames == classNames else { throw refuse("its classes differ (\(source.classNames) vs \(classNames))") }
        guard source.standardization == standardization else { throw refuse("it was trained on other data (another standardization)") }
        guard source.isFinished(train) else { throw refuse("its training has not finished") }
    }

    /// The teacher's logits for every example of `train` (evaluation mode, so without
    /// dropout), after checking that the teacher fits the settings.
    private func teacherLogits(_ teacher: ClassifierTraining?, train: TimeSeriesDataset, backend: any Backend) throws -> [Float]? {
        func refuse(_ why: String) -> LowBitError { .invalidArgument("\(settings.modeName) cannot learn from the float model: \(why)") }
        switch (settings.distillation, teacher) {
        case (nil, nil): return nil
        case (nil, _?): throw LowBitError.invalidArgument("\(settings.modeName) learns from the labels alone, but a teacher was given")
        case (_?, nil): throw LowBitError.invalidArgument("\(settings.modeName) learns from the float model (distillation), but none was given")
        case (_?, let teacher?):
            try checkFloatModel(teacher, train: train, refuse: refuse)
            var logits: [Float] = []
            logits.reserveCapacity(train.count * classNames.count)
            for (batch, _) in try info.batches(train, windowSize: model.options.windowSize) {
                logits += try teacher.model.forward(batch, Execution(backend: backend, training: false)).scalars
            }
            return logits
        }
    }

    /// Continues the run saved at `path` by ``save(to:)``.
    public init(resumingFrom path: String) throws {
        let (model, optimizer, metadata) = try Checkpoint.load(from: path)
        guard let optimizer else { throw LowBitError.invalidFile(path: path, reason: "the checkpoint has no optimizer state to resume from") }
        guard let text = metadata[Self.metadataKey],
              let record = try? JSONDecoder().decode(Record.self, from: Data(text.utf8)) else {
            throw LowBitError.invalidFile(path: path, reason: "not a training checkpoint (no readable '\(Self.metadataKey)' metadata)")
        }
        let info = try ModelInfo(metadata: metadata, path: path)
        self.settings = record.settings
        self.model = model
        self.optimizer = optimizer
        self.standardization = info.standardization
        self.classNames = info.classNames
        self.history = record.history
        self.trainSeconds = record.trainSeconds
        self.epochSums = record.epochSums
    }

    static let metadataKey = "lowbit.training"

    struct Record: Codable {
        var settings: TrainingSettings
        var history: [EpochRecord]
        var trainSeconds: Double
        var epochSums: EpochSums
    }

    /// What a model file needs besides the weights to classify raw series.
    public var info: ModelInfo {
        ModelInfo(classNames: classNames, standardization: standardization, modeName: settings.modeName, patchLength: settings.patchLength)
    }

    public func stepsPerEpoch(_ train: TimeSeriesDataset) -> Int { settings.stepsPerEpoch(train.count) }

    /// Whether every epoch has run.
    public func isFinished(_ train: TimeSeriesDataset) -> Bool { optimizer.step >= settings.epochs * stepsPerEpoch(train) }

    /// The learning rate at a 0-based step: linear warmup, then cosine decay.
    public func learningRate(atStep step: Int, stepsPerEpoch: Int) -> Float {
        let total = settings.epochs * stepsPerEpoch, warmup = min(settings.warmupEpochs * stepsPerEpoch, total - 1)
        if step < warmup { return settings.learningRate * Float(step + 1) / Float(warmup + 1) }
        let progress = Float(step - warmup) / Float(max(total - 1 - warmup, 1))
        let low = settings.finalLearningRateFraction
        return settings.learningRate * (low + (1 - low) * 0.5 * (1 + cosf(.pi * min(progress, 1))))
    }

    /// The examples of each step of `epoch`: a permutation drawn from (seed, epoch).
    func order(epoch: Int, count: Int) -> [Int] {
        var rng = SeededGenerator(seed: settings.seed ^ (0x5EED_0F_0BA7C4 &* UInt64(epoch + 1)))
        var indices = Array(0..<count)
        indices.shuffle(using: &rng)
        return indices
    }

    public enum Outcome: Sendable, Equatable { case finished, interrupted }

    /// Trains from the current step to the last epoch. With `selection`, the run is scored on
    /// the selection data after every epoch and ends with the weights of the epoch that scored
    /// best (see ``CheckpointSelection``). When the settings ask for distillation,
    /// `teacher` is the finished float run to learn from (same classes and data). After every epoch: evaluates on
    /// `evaluation` (if given; every `evaluationInterval` epochs and after the last),
    /// appends to the history, saves to `checkpointPath` (if given; atomically). `shouldStop` is asked after every step; when it says yes the
    /// run saves a checkpoint at that step and returns `.interrupted`.
    @discardableResult
    public func run(train: TimeSeriesDataset, evaluation: TimeSeriesDataset? = nil, teacher: ClassifierTraining? = nil, backend: any Backend,
                    checkpointPath: String? = nil, evaluationInterval: Int = 1, selection: CheckpointSelection? = nil,
                    progress: (TrainingProgress) -> Void = { _ in }, shouldStop: () -> Bool = { false }) throws -> Outcome {
        let train = try train.relabelled(to: classNames)
        let evaluation = try evaluation?.relabelled(to: classNames)
        guard train.channels * settings.patchLength == model.options.embedDim else {
            throw LowBitError.invalidShape("\(train.name) has \(train.channels) channels, the model takes \(model.options.embedDim / settings.patchLength)")
        }
        let perEpoch = stepsPerEpoch(train), total = settings.epochs * perEpoch
        let trainer = Trainer(model: model, backend: backend, optimizer: optimizer, maxGradientNorm: settings.maxGradientNorm)
        let evalBatches = try evaluation.map { try info.batches($0, windowSize: model.options.windowSize) }
        let selectionBatches = try selection.map { try info.batches($0.data, windowSize: model.options.windowSize) }
        let teacherLogits = try self.teacherLogits(teacher, train: train, backend: backend)
        let classes = classNames.count
        var sessionSteps = 0
        let sessionStart = Date()
        while optimizer.step < total {
            let step = optimizer.step, epoch = step / perEpoch, within = step % perEpoch
            if within == 0 { epochSums = EpochSums() }
            let order = self.order(epoch: epoch, count: train.count)
            let indices = Array(order[(within * settings.batchSize)..<min((within + 1) * settings.batchSize, train.count)])
            let (batch, labels) = try trainingBatch(train, indices, step: step)
            optimizer.learningRate = learningRate(atStep: step, stepsPerEpoch: perEpoch)
            let start = Date()
            let lesson = try teacherLogits.map { all in
                (logits: try Tensor(shape: [indices.count, classes], scalars: indices.flatMap { all[($0 * classes)..<(($0 + 1) * classes)] }),
                 distillation: settings.distillation!)
            }
            let (loss, predictions) = try trainer.trainingStep(batch, labels: labels, teacher: lesson)
            trainSeconds += Date().timeIntervalSince(start)
            sessionSteps += 1
            guard loss.isFinite else {
                throw LowBitError.nonFinite("the training loss became \(loss) at step \(step + 1); lower the learning rate")
            }
            epochSums.loss += Double(loss) * Double(labels.count)
            epochSums.correct += zip(predictions, labels).filter { $0 == $1 }.count
            epochSums.seen += labels.count
            let (epochLoss, epochAccuracy) = (Float(epochSums.loss / Double(epochSums.seen)), Double(epochSums.correct) / Double(epochSums.seen))
            let rate = Double(sessionSteps) / max(Date().timeIntervalSince(sessionStart), 1e-9)
            progress(TrainingProgress(epoch: epoch + 1, epochs: settings.epochs, step: step + 1, steps: total,
                                      loss: epochLoss, accuracy: epochAccuracy,
                                      stepsPerSecond: rate, secondsRemaining: Double(total - step - 1) / rate))
            if within == perEpoch - 1 {
                var record = EpochRecord(epoch: epoch + 1, step: step + 1, trainLoss: epochLoss,
                                         trainAccuracy: epochAccuracy, seconds: trainSeconds)
                if let evalBatches, (epoch + 1) % max(evaluationInterval, 1) == 0 || epoch + 1 == settings.epochs {
                    let (l, a) = try trainer.evaluate(evalBatches)
                    (record.evaluationLoss, record.evaluationAccuracy) = (l, a)
                }
                if let selection, let selectionBatches {
                    let (l, a) = try trainer.evaluate(selectionBatches)
                    (record.selectionLoss, record.selectionAccuracy) = (l, a)
                    // Written before the checkpoint that records it: a resumed run finds it.
                    if l.isFinite, l < history.compactMap(\.selectionLoss).min() ?? .infinity {
                        try Checkpoint.save(model, to: selection.path, metadata: try info.metadata())
                    }
                }
                history.append(record)
                if let checkpointPath { try save(to: checkpointPath) }
            } else if shouldStop() {
                if let checkpointPath { try save(to: checkpointPath) }
                return .interrupted
            }
            if within == perEpoch - 1, shouldStop(), optimizer.step < total { return .interrupted }
        }
        if let selection { try restoreSelected(selection) }
        return .finished
    }

    /// The epoch whose weights a run with checkpoint selection ends with: the first one of
    /// lowest selection loss (nil without selection).
    public var selectedEpoch: Int? {
        history.filter { $0.selectionLoss?.isFinite == true }.min { $0.selectionLoss! < $1.selectionLoss! }?.epoch
    }

    /// Puts the selected epoch's weights into the model. The static-range statistics stay
    /// those of the whole run.
    private func restoreSelected(_ selection: CheckpointSelection) throws {
        guard selectedEpoch != nil else { return }
        try copyParameters(from: try Checkpoint.load(from: selection.path).model) {
            LowBitError.invalidFile(path: selection.path, reason: "it holds no parameter \($0): not this run's selected model")
        }
    }

    /// The batch of step `step`: examples `indices` of `train`, augmented when the settings
    /// say so, from draws of (seed, step), so that a resumed run sees the same series.
    func trainingBatch(_ train: TimeSeriesDataset, _ indices: [Int], step: Int) throws -> (batch: SequenceBatch, labels: [Int]) {
        let seed = settings.seed ^ (0xA064_3E47_0000_0000 &+ UInt64(step) &* 0x2545_F491_4F6C_DD1D)
        return try settings.augmentation.batch(train, indices, info: info, windowSize: model.options.windowSize, seed: seed)
    }

    /// Saves the model, optimizer, statistics, settings, history, standardization and class
    /// list; ``init(resumingFrom:)`` continues from it.
    public func save(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var metadata = try info.metadata()
        metadata[Self.metadataKey] = String(decoding: try encoder.encode(Record(settings: settings, history: history, trainSeconds: trainSeconds, epochSums: epochSums)), as: UTF8.self)
        try Checkpoint.save(model, optimizer: optimizer, to: path, metadata: metadata)
    }

    /// Accuracy and the confusion matrix (rows: true class, columns: predicted) of `model`
    /// (or a packed one) on `data`.
    public static func evaluate(_ data: TimeSeriesDataset, info: ModelInfo, windowSize: Int,
                                predict: (SequenceBatch) throws -> [Int]) throws -> Evaluation {
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: info.classNames.count), count: info.classNames.count)
        for (batch, labels) in try info.batches(data, windowSize: windowSize) {
            for (p, l) in zip(try predict(batch), labels) { confusion[l][p] += 1 }
        }
        return Evaluation(classNames: info.classNames, confusion: confusion)
    }
}

/// Accuracy and confusion matrix of a classifier on a labelled set.
public struct Evaluation: Sendable, Equatable, Codable {
    public var classNames: [String]
    /// confusion[true][predicted].
    public var confusion: [[Int]]
    /// The mean cross-entropy of the predicted probabilities against the labels, when the
    /// evaluation had them (``PackedClassifier/evaluate(on:)`` does): a finer measure than
    /// accuracy for comparing settings.
    public var meanCrossEntropy: Double?

    public init(classNames: [String], confusion: [[Int]], meanCrossEntropy: Double? = nil) {
        self.classNames = classNames
        self.confusion = confusion
        self.meanCrossEntropy = meanCrossEntropy
    }
    public var count: Int { confusion.joined().reduce(0, +) }
    public var correct: Int { confusion.indices.reduce(0) { $0 + confusion[$1][$1] } }
    public var accuracy: Double { Double(correct) / Double(max(count, 1)) }
}

/// What a saved model needs, besides its weights, to classify raw series: the class names,
/// the training data's standardization and how steps become tokens.
public struct ModelInfo: Sendable, Equatable, Codable {
    public var classNames: [String]
    public var standardization: ChannelStandardization
    public var modeName: String
    /// Steps per token (``TrainingSettings/patchLength``).
    public var patchLength: Int

    public init(classNames: [String], standardization: ChannelStandardization, modeName: String, patchLength: Int = 1) {
        self.classNames = classNames
        self.standardization = standardization
        self.modeName = modeName
        self.patchLength = patchLength
    }

    /// Decodes files written before patches existed as one step per token.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(classNames: try c.decode([String].self, forKey: .classNames),
                  standardization: try c.decode(ChannelStandardization.self, forKey: .standardization),
                  modeName: try c.decode(String.self, forKey: .modeName),
                  patchLength: try c.decodeIfPresent(Int.self, forKey: .patchLength) ?? 1)
    }

    /// Examples `indices` of `data` as the model reads them: labels in the model's classes,
    /// standardized, cut into patches, at most `windowSize` tokens (the newest).
    public func batch(_ data: TimeSeriesDataset, _ indices: [Int], windowSize: Int) throws -> (batch: SequenceBatch, labels: [Int]) {
        try checkChannels(data)
        return try data.relabelled(to: classNames).batch(indices, standardization: standardization, maxSteps: windowSize, patchLength: patchLength)
    }

    /// All of `data`, in order, in batches of `size`, as ``batch(_:_:windowSize:)`` reads them.
    public func batches(_ data: TimeSeriesDataset, size: Int = 64, windowSize: Int) throws -> [(batch: SequenceBatch, labels: [Int])] {
        try checkChannels(data)
        return try data.relabelled(to: classNames).batches(size: size, standardization: standardization, maxSteps: windowSize, patchLength: patchLength)
    }

    private func checkChannels(_ data: TimeSeriesDataset) throws {
        guard data.channels == standardization.mean.count else {
            throw LowBitError.invalidShape("\(data.name) has \(data.channels) channels, the model takes \(standardization.mean.count)")
        }
    }

    static let metadataKey = "lowbit.data"

    func metadata() throws -> [String: String] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return [Self.metadataKey: String(decoding: try encoder.encode(self), as: UTF8.self)]
    }

    init(metadata: [String: String], path: String) throws {
        guard let text = metadata[Self.metadataKey], let info = try? JSONDecoder().decode(ModelInfo.self, from: Data(text.utf8)) else {
            throw LowBitError.invalidFile(path: path, reason: "no readable class names and standardization ('\(Self.metadataKey)' metadata)")
        }
        guard info.classNames.count >= 2, info.patchLength >= 1, (try? ChannelStandardization(mean: info.standardization.mean, deviation: info.standardization.deviation)) != nil else {
            throw LowBitError.invalidFile(path: path, reason: "invalid class names or standardization in '\(Self.metadataKey)'")
        }
        guard Set(info.classNames).count == info.classNames.count else {
            let repeated = Dictionary(grouping: info.classNames, by: { $0 }).filter { $1.count > 1 }.keys.sorted()
            throw LowBitError.invalidFile(path: path, reason: "class names repeat (\(repeated.map { "'\($0)'" }.joined(separator: ", "))) in '\(Self.metadataKey)'")
        }
        let mode = info.modeName.hasSuffix("+qt") ? String(info.modeName.dropLast(3)) : info.modeName
        guard mode == "float" || QuantizationMode(rawValue: mode) != nil else {
            throw LowBitError.invalidFile(path: path, reason: "unknown mode '\(info.modeName)' in '\(Self.metadataKey)'")
        }
        guard info.patchLength <= TrainingRecipe.maxTokenValues else {
            throw LowBitError.invalidFile(path: path, reason: "patch length \(info.patchLength) exceeds the limit of \(TrainingRecipe.maxTokenValues)")
        }
        self = info
    }
}
