/// Trains a ``SequenceClassifier``: forward in training mode, softmax cross-entropy,
/// backward, gradient clipping, AdamW. Deterministic for a fixed seed and backend.
///
/// The training layers, from the bottom up: a `Trainer` takes one optimizer step on a
/// batch; ``ClassifierTraining`` is a whole run on a dataset (schedule, batches,
/// augmentation, distillation, checkpoints, evaluation); ``ModeComparison`` runs several
/// of those side by side, one per mode and ensemble member, and packs the results.
public final class Trainer {
    /// The model the steps update.
    public let model: SequenceClassifier
    /// The backend the forward and backward passes run on.
    public let backend: any Backend
    /// The optimizer that applies each step's gradients. Its step count also picks the dropout
    /// masks, so that a resumed run draws the same ones.
    public let optimizer: AdamW
    /// The global L2 norm the gradients are clipped to before each update (see
    /// ``clipGradients(_:maxNorm:)``); nil does not clip.
    public var maxGradientNorm: Float?
    /// How many workers share a step: a batch's sequences are split over this many copies of
    /// the model, each running its share's forward and backward on one thread (see
    /// DataParallelStep.swift). 1: the whole batch on the backend's own threads.
    public let workers: Int
    /// The workers' model copies (the model itself is worker 0) and their one-thread backends.
    var replicas: [SequenceClassifier] = []
    var workerBackends: [any Backend] = []
    /// The ranks this trainer's steps are split over (see DistributedStep.swift); nil: this
    /// process alone.
    public let group: (any ProcessGroup)?
    /// The buffer of the group's sums of small gradients, kept between steps.
    var reductionScratch: [Float] = []
    /// Gradients of fewer floats than this are summed over the group packed into one buffer;
    /// larger ones in place (see `allReduceGradients`).
    var gradientBucketLimit = 1 << 14

    /// Creates a trainer that updates `model` on `backend` with `optimizer` (by default a fresh
    /// ``AdamW`` with its defaults), clipping the gradients to a norm of 1 unless told otherwise.
    public convenience init(model: SequenceClassifier, backend: any Backend, optimizer: AdamW = AdamW(), maxGradientNorm: Float? = 1) {
        self.init(model, backend, optimizer, maxGradientNorm, workers: 1, group: nil)
    }

    private init(_ model: SequenceClassifier, _ backend: any Backend, _ optimizer: AdamW, _ maxGradientNorm: Float?,
                 workers: Int, group: (any ProcessGroup)?) {
        self.model = model
        self.backend = backend
        self.optimizer = optimizer
        self.maxGradientNorm = maxGradientNorm
        self.workers = workers
        self.group = group
    }

    /// Creates a trainer whose steps split each batch's sequences over `workers` copies of the
    /// model.
    ///
    /// With `workers` above 1, each step splits its batch's sequences over that many copies of
    /// the model, run side by side on one thread each, and adds their gradients in a fixed
    /// order: the result does not depend on scheduling (bit for bit the same for a fixed
    /// worker count), and differs from one worker's only by the order of the gradient sums
    /// (and of OpenBLAS's). Dropout masks are the whole batch's. Throws
    /// ``LowBitError/invalidArgument(_:)`` unless `workers` is from 1 to 64.
    public convenience init(model: SequenceClassifier, backend: any Backend, optimizer: AdamW = AdamW(), maxGradientNorm: Float? = 1,
                            workers: Int) throws {
        guard (1...64).contains(workers) else { throw LowBitError.invalidArgument("workers must be from 1 to 64, got \(workers)") }
        self.init(model, backend, optimizer, maxGradientNorm, workers: workers, group: nil)
    }

    /// Creates a trainer whose steps are split over the ranks of `group`: each rank runs the
    /// forward and backward of its share of each batch's sequences on `backend`, and the ranks'
    /// gradients are summed, so that every rank takes the same step and keeps the same weights.
    ///
    /// Every rank must create its trainer from the same model (the same seed) and pass it the
    /// same batches. The step is the one a trainer with `group.size` workers takes: bit for bit
    /// with two ranks, and to the order of the group's sums with more.
    public convenience init(model: SequenceClassifier, backend: any Backend, optimizer: AdamW = AdamW(), maxGradientNorm: Float? = 1,
                            group: any ProcessGroup) {
        self.init(model, backend, optimizer, maxGradientNorm, workers: 1, group: group)
    }

    /// One optimisation step; returns the batch's loss before the update.
    @discardableResult
    public func step(_ batch: SequenceBatch, labels: [Int]) throws -> Float {
        try trainingStep(batch, labels: labels).loss
    }

    /// One optimisation step; returns the batch's cross-entropy and predicted classes before
    /// the update. With `teacher` (its logits for this batch), the step follows the
    /// distillation objective; the loss returned is still the cross-entropy against the labels.
    public func trainingStep(_ batch: SequenceBatch, labels: [Int],
                             teacher: (logits: Tensor, distillation: Distillation)? = nil) throws -> (loss: Float, predictions: [Int]) {
        try optimizer.validate()
        if let group, group.size > 1 { return try distributedStep(batch, labels: labels, group: group, teacher: teacher) }
        if workers > 1 && batch.shape.batch > 1 { return try dataParallelStep(batch, labels: labels, teacher: teacher) }
        let exec = Execution(backend: backend, training: true, step: optimizer.step)
        let params = model.parameters
        for p in params { p.zeroGrad() }
        let logits = try model.forward(batch, exec)
        let (loss, dLogits) = try objective(logits, labels: labels, teacher: teacher)
        try model.backward(dLogits, exec)
        if let maxGradientNorm { clipGradients(params, maxNorm: maxGradientNorm) }
        optimizer.update(params)
        return (loss, argmaxRows(logits))
    }

    /// The batch's cross-entropy against the labels and the gradient of what the step
    /// minimises: the distillation objective with a teacher, the cross-entropy without.
    func objective(_ logits: Tensor, labels: [Int], teacher: (logits: Tensor, distillation: Distillation)?) throws -> (Float, Tensor) {
        guard let teacher else { return try Loss.softmaxCrossEntropy(logits: logits, labels: labels) }
        let d = try Loss.distillation(logits: logits, labels: labels, teacherLogits: teacher.logits,
                                      weight: teacher.distillation.weight, temperature: teacher.distillation.temperature)
        return (d.crossEntropy, d.gradient)
    }

    /// The objective of the rows `rows` of a batch of `batchSize` sequences, given their logits:
    /// each row's cross-entropy against its label and the gradient of the whole batch's
    /// objective with respect to these rows, bit for bit the rows of ``objective(_:labels:teacher:)``'s
    /// (a worker or rank takes its share without waiting for the others' logits).
    func rowObjective(_ logits: Tensor, rows: Range<Int>, labels: [Int], teacher: (logits: Tensor, distillation: Distillation)?,
                      batchSize: Int) throws -> (rowLosses: [Double], gradient: Tensor) {
        let mine = Array(labels[rows])
        guard let teacher else {
            let (losses, gradient) = try Loss.crossEntropyRows(logits: logits, labels: mine, batchSize: batchSize)
            return (losses, try Tensor(shape: logits.shape, scalars: gradient))
        }
        let c = teacher.logits.shape[1]
        let teacherRows = try Tensor(shape: [rows.count, c], scalars: Array(teacher.logits.scalars[(rows.lowerBound * c)..<(rows.upperBound * c)]))
        let d = try Loss.distillationRows(logits: logits, labels: mine, teacherLogits: teacherRows, weight: teacher.distillation.weight,
                                          temperature: teacher.distillation.temperature, batchSize: batchSize)
        return (d.rowCrossEntropies, try Tensor(shape: logits.shape, scalars: d.gradient))
    }

    /// Checks, before a step splits its batch, what every share of it would otherwise find on
    /// its own: the label count and range, and a teacher's shape and settings; so that every
    /// worker or rank refuses the same batch with the same message.
    func checkShares(labels: [Int], batch: Int, teacher: (logits: Tensor, distillation: Distillation)?) throws {
        let classes = model.classes
        guard labels.count == batch else { throw LowBitError.invalidShape("\(labels.count) labels for \(batch) sequences") }
        try Loss.checkLabels(labels, classes: classes)
        guard let teacher else { return }
        try Loss.checkDistillation(teacherShape: teacher.logits.shape, studentShape: [batch, classes],
                                   weight: teacher.distillation.weight, temperature: teacher.distillation.temperature)
        try teacher.logits.checkFinite("teacher logits")
    }

    /// Mean loss and accuracy over batches, in evaluation mode.
    public func evaluate(_ batches: [(SequenceBatch, [Int])]) throws -> (loss: Float, accuracy: Double) {
        var loss: Double = 0, correct = 0, total = 0
        for (batch, labels) in batches {
            let logits = try model.forward(batch, Execution(backend: backend, training: false))
            loss += Double(try Loss.softmaxCrossEntropy(logits: logits, labels: labels).loss) * Double(labels.count)
            correct += zip(argmaxRows(logits), labels).filter { $0 == $1 }.count
            total += labels.count
        }
        return (Float(loss / Double(max(total, 1))), Double(correct) / Double(max(total, 1)))
    }
}
