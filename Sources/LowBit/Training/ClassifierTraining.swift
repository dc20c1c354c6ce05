import Foundation

/// A classifier training run on a time-series dataset: the model, its optimizer, the
/// standardization fitted on the training data, the class list and the history, with
/// checkpoints that resume the run exactly (same batches, same dropout masks).
public final class ClassifierTraining {
    /// Workers each step's batch is split over (``Trainer``'s `workers`: copies of the model on
    /// one thread each); 1 by default, the backend's own threads inside each kernel. Above 1,
    /// the result depends on the worker count in its last bits (the order of the gradient
    /// sums), not on timing.
    public var workers = 1
    /// The least time, in seconds, between two checkpoints written at the end of an epoch.
    /// A run writes one after its first epoch, then at the first epoch end at least this long
    /// after the last one, and always after its last epoch and when it stops. Why: a small
    /// dataset's epoch is a few steps, and writing every epoch's checkpoint took a fifth of
    /// the run's time (ArrowHead: 227 epochs of 3 steps). 0 writes one every epoch.
    public var checkpointInterval: Double = 20

    /// The ranks each step's batch is split over, one process (or machine) each; nil: this
    /// process alone. Every rank runs the same run on the same data: they take the same steps
    /// (see ``Trainer/init(model:backend:optimizer:maxGradientNorm:group:)``) and keep the same
    /// weights, which is checked after every epoch. Rank 0 alone writes the checkpoints and the
    /// selected weights; every rank reads them, so with several machines `checkpointPath` must
    /// be on a shared file system.
    public var processGroup: (any ProcessGroup)?
    /// The settings of the run; checkpoints save them, so a resumed run keeps them.
    public let settings: TrainingSettings
    /// The model being trained; every step updates its weights.
    public let model: SequenceClassifier
    /// The optimizer, whose ``AdamW/step`` counts the steps the run has taken.
    public let optimizer: AdamW
    /// The per-channel standardization fitted on the training data the run was created with
    /// (on its tokens' features, with convolution tokens), applied to every split it trains or
    /// evaluates on.
    public let standardization: ChannelStandardization
    /// The training data's class names, in the order of the model's outputs.
    public let classNames: [String]
    /// With convolution tokens (``TrainingSettings/tokens``), what turns a series into the
    /// model's tokens, fitted on the training data the run was created with; nil for patches.
    public let tokenizer: ConvolutionTokenizer?
    /// The last data tokenized for a step, and its tokens: a run tokenizes its training data
    /// once, not at every step.
    private var tokenized: (source: TimeSeriesDataset, tokens: TimeSeriesDataset)?
    /// One record per finished epoch, in order (carried over by a resume).
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
        let features: Int, tokens: Int
        switch settings.tokens {
        case .patches:
            (features, tokens) = try TrainingRecipe.tokenShape(channels: train.channels, steps: windowSize ?? train.maxLength,
                                                               patchLength: settings.patchLength, name: train.name)
            tokenizer = nil
        case .convolution:
            // Seed 0 for every mode and ensemble member: they share one tokenizer, as they share
            // one standardization, so that they can be packed and averaged together.
            let tokenizer = try ConvolutionTokenizer(fittedTo: train, patchLength: settings.patchLength, seed: 0)
            guard tokenizer.featureCount <= TrainingRecipe.maxTokenValues else {
                throw LowBitError.invalidArgument("\(train.name): \(tokenizer.featureCount) convolution features per token exceed the limit of "
                                                  + "\(TrainingRecipe.maxTokenValues); use --tokens patches")
            }
            (features, tokens) = (tokenizer.featureCount, tokenizer.tokenCount(steps: windowSize ?? train.maxLength))
            self.tokenizer = tokenizer
        }
        let configuration = EncoderConfiguration(inputWidth: features, width: settings.width, headCount: settings.headCount,
                                                 layerCount: settings.layerCount, weightMode: settings.mode,
                                                 dropout: settings.dropout, maxSteps: tokens,
                                                 usesPositionalEncoding: settings.usesPositionalEncoding, seed: settings.seed)
        let rules = settings.mode.map { mode in
            [QuantizationRule("*", LayerQuantization(mode: mode, backward: settings.quantizedBackward ? .int8 : .float,
                                                     stochasticRoundingSeed: settings.quantizedBackward ? settings.seed : nil))]
        }
        self.settings = settings
        model = try SequenceClassifier(configuration, classes: train.classNames.count, rules: rules)
        optimizer = AdamW(learningRate: settings.learningRate, weightDecay: settings.weightDecay)
        if let tokenizer {
            let tokens = try tokenizer.tokens(of: train)
            tokenized = (train, tokens)
            standardization = ChannelStandardization(fitting: tokens)
        } else {
            standardization = ChannelStandardization(fitting: train)
        }
        classNames = train.classNames
        if let source { try start(from: source, train: train) }
    }

    /// Copies the float run's weights into this run's model, after checking that they fit.
    private func start(from source: ClassifierTraining, train: TimeSeriesDataset) throws {
        func refuse(_ why: String) -> LowBitError { .invalidArgument("cannot start \(settings.modeName) from the float model: \(why)") }
        try checkFloatModel(source, train: train, refuse: refuse)
        let (a, b) = (source.model.configuration, model.configuration)
        guard (a.width, a.headCount, a.layerCount) == (b.width, b.headCount, b.layerCount) else {
            throw refuse("it has hidden size \(a.width), \(a.headCount) heads and \(a.layerCount) layers; "
                         + "this run has \(b.width), \(b.headCount) and \(b.layerCount)")
        }
        guard a.usesPositionalEncoding == b.usesPositionalEncoding else {
            throw refuse("it was trained \(a.usesPositionalEncoding ? "with" : "without") a positional encoding, this run is \(b.usesPositionalEncoding ? "with" : "without") one")
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
        let (a, b) = (source.model.configuration, model.configuration)
        guard a.inputWidth == b.inputWidth else { throw refuse("it has \(a.inputWidth) inputs, this run \(b.inputWidth)") }
        guard a.maxSteps >= b.maxSteps else { throw refuse("it takes sequences up to \(a.maxSteps) steps, this run \(b.maxSteps)") }
        guard source.classNames == classNames else { throw refuse("its classes differ (\(source.classNames) vs \(classNames))") }
        guard source.standardization == standardization, source.tokenizer == tokenizer else {
            throw refuse("it was trained on other data (another standardization or other tokens)")
        }
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
            for (batch, _) in try info.batches(train, windowSize: model.configuration.maxSteps) {
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
        self.tokenizer = info.tokenizer
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
        ModelInfo(classNames: classNames, standardization: standardization, modeName: settings.modeName, patchLength: settings.patchLength,
                  tokenizer: tokenizer)
    }

    /// Returns the number of optimizer steps in one epoch over `train`: its series count divided
    /// by the batch size, rounded up.
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

    /// How a call to `run` ended: `finished` when every epoch has run, `interrupted` when
    /// `shouldStop` stopped it early (with a `checkpointPath`, the checkpoint holds the step
    /// reached).
    public enum Outcome: Sendable, Equatable {
        /// Every epoch has run.
        case finished
        /// `shouldStop` stopped the run before its end.
        case interrupted
    }

    /// Trains from the current step to the last epoch. With `selection`, the run is scored on
    /// the selection data after every epoch and ends with the weights of the epoch that scored
    /// best (see ``CheckpointSelection``). When the settings ask for distillation,
    /// `teacher` is the finished float run to learn from (same classes and data). After every epoch: evaluates on
    /// `evaluation` (if given; every `evaluationInterval` epochs and after the last),
    /// appends to the history, saves to `checkpointPath` (if given; atomically; see ``checkpointInterval``). `shouldStop` is asked after every step; when it says yes the
    /// run saves a checkpoint at that step and returns `.interrupted`.
    @discardableResult
    public func run(train: TimeSeriesDataset, evaluation: TimeSeriesDataset? = nil, teacher: ClassifierTraining? = nil, backend: any Backend,
                    checkpointPath: String? = nil, evaluationInterval: Int = 1, selection: CheckpointSelection? = nil,
                    progress: (TrainingProgress) -> Void = { _ in }, shouldStop: () -> Bool = { false }) throws -> Outcome {
        let train = try train.relabelled(to: classNames)
        let evaluation = try evaluation?.relabelled(to: classNames)
        guard train.channels == info.channels else {
            throw LowBitError.invalidShape("\(train.name) has \(train.channels) channels, the model takes \(info.channels)")
        }
        let trainTokens = try tokens(of: train)
        let perEpoch = stepsPerEpoch(train), total = settings.epochs * perEpoch
        let group = processGroup.flatMap { $0.size > 1 ? $0 : nil }
        if group != nil, workers > 1 { throw LowBitError.invalidArgument("a run splits its steps over workers or over a process group, not both") }
        let writes = (group?.rank ?? 0) == 0
        /// Asked of every rank at the same points, so that they stop at the same step.
        func stopRequested() throws -> Bool { try group.map { try $0.anyRank(shouldStop()) } ?? shouldStop() }
        let trainer: Trainer
        if let group {
            trainer = Trainer(model: model, backend: backend, optimizer: optimizer, maxGradientNorm: settings.maxGradientNorm, group: group)
        } else if workers > 1 {
            trainer = try Trainer(model: model, backend: backend, optimizer: optimizer, maxGradientNorm: settings.maxGradientNorm, workers: workers)
        } else {
            trainer = Trainer(model: model, backend: backend, optimizer: optimizer, maxGradientNorm: settings.maxGradientNorm)
        }
        let evalBatches = try evaluation.map { try info.batches($0, windowSize: model.configuration.maxSteps) }
        let selectionBatches = try selection.map { try info.batches($0.data, windowSize: model.configuration.maxSteps) }
        let teacherLogits = try self.teacherLogits(teacher, train: train, backend: backend)
        let classes = classNames.count
        var sessionSteps = 0
        let sessionStart = Date()
        var lastCheckpoint: Date?
        while optimizer.step < total {
            let step = optimizer.step, epoch = step / perEpoch, within = step % perEpoch
            if within == 0 { epochSums = EpochSums() }
            let order = self.order(epoch: epoch, count: train.count)
            let indices = Array(order[(within * settings.batchSize)..<min((within + 1) * settings.batchSize, train.count)])
            let (batch, labels) = try trainingBatch(trainTokens, indices, step: step)
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
                    if writes, l.isFinite, l < history.compactMap(\.selectionLoss).min() ?? .infinity {
                        try Checkpoint.save(model, to: selection.path, metadata: try info.metadata())
                    }
                }
                history.append(record)
                if let group { try trainer.checkRanksAgree(group, after: "epoch \(epoch + 1)") }
                // Asked of every rank at every epoch's end, as before a checkpoint, so that they stop together.
                let stopping = try stopRequested() && optimizer.step < total
                if writes, let checkpointPath, stopping || optimizer.step >= total
                    || lastCheckpoint.map({ Date().timeIntervalSince($0) >= checkpointInterval }) ?? true {
                    try save(to: checkpointPath)
                    lastCheckpoint = Date()
                }
                if stopping {
                    try group?.barrier()   // the checkpoint is written before any rank reports it
                    return .interrupted
                }
            } else if try stopRequested() {
                if writes, let checkpointPath { try save(to: checkpointPath) }
                try group?.barrier()   // the checkpoint is written before any rank reports it
                return .interrupted
            }
        }
        try group?.barrier()   // rank 0 has written its files
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

    /// The batch of step `step`: examples `indices` of `train` (already tokenized by
    /// ``tokens(of:)``), augmented when the settings say so, from draws of (seed, step), so
    /// that a resumed run sees the same series.
    func trainingBatch(_ train: TimeSeriesDataset, _ indices: [Int], step: Int) throws -> (batch: SequenceBatch, labels: [Int]) {
        let seed = settings.seed ^ (0xA064_3E47_0000_0000 &+ UInt64(step) &* 0x2545_F491_4F6C_DD1D)
        return try settings.augmentation.batch(train, indices, info: info.tokenInfo, windowSize: model.configuration.maxSteps, seed: seed)
    }

    /// `train` as the model's tokens (itself for patches), reusing the last result for the
    /// same data.
    func tokens(of train: TimeSeriesDataset) throws -> TimeSeriesDataset {
        guard tokenizer != nil else { return train }
        if let tokenized, tokenized.source == train { return tokenized.tokens }
        let tokens = try info.tokens(of: train)
        tokenized = (train, tokens)
        return tokens
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
}
