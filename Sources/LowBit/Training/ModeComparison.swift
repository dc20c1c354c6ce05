import Foundation

/// Trains a classifier in several modes side by side, each as an ensemble, then packs,
/// evaluates and times every mode: the workflow of `lowbit train`, callable from Swift.
///
/// As many models train at once as there are threads, one model per thread (a model is
/// too small for two threads to speed it up, and two models keep two cores busy). A model
/// ends bit for bit where it ends when trained alone, so the thread count changes the time,
/// not the result. When a quantized mode starts from the float model or learns from its
/// predictions, float is trained first and the quantized models pair with the float model
/// of the same ensemble position.
///
/// Every model keeps a resumable checkpoint in ``directory``; an interrupted comparison
/// (``run(train:evaluation:selection:events:shouldStop:)`` throws ``Interrupted``) continues
/// with ``resume`` set, exactly as if it had not stopped.
public struct ModeComparison: Sendable {
    /// One entry per mode, in the order of the results; `mode` nil is float.
    public var settings: [TrainingSettings]
    /// Backend kind, ISA and thread count.
    public var runtime: RuntimeConfiguration
    /// Per mode, `directory/MODE/` receives each model's checkpoint
    /// (`checkpoint.safetensors`, `checkpoint-2.safetensors`, …) and the packed model
    /// (`model.packed.safetensors`).
    public var directory: URL
    /// Continue every model from its checkpoint in ``directory`` when there is one.
    public var resume: Bool
    /// Whether to measure each packed model's latency on one sequence (about 0.3 s per mode).
    public var measuresLatency: Bool
    /// Workers each model's steps are split over (``ClassifierTraining/workers``); 1 by default.
    /// Above 1, as many models train at once as the threads allow with that many each, every
    /// worker on one thread; the models then depend on this count in their last bits (not on
    /// the thread count or timing), which with 1 they do not.
    public var workersPerModel = 1
    /// The ranks every model's steps are split over (``ClassifierTraining/processGroup``), one
    /// process each; nil: this process alone. With a group of more than one rank the models
    /// train one at a time, each on all of ``runtime``'s threads of every rank, and rank 0 alone
    /// writes the checkpoints and packed models (every rank returns the same results).
    public var processGroup: (any ProcessGroup)?
    /// Stop every model after this epoch, its checkpoint saved (``run(train:evaluation:selection:events:shouldStop:)``
    /// then throws ``Interrupted``, and a comparison with ``resume`` set continues); nil runs to the end.
    public var stopsAfterEpoch: Int?
    /// The least seconds between two epoch-end checkpoints of a model
    /// (``ClassifierTraining/checkpointInterval``); 20 by default, 0 for one every epoch.
    public var checkpointInterval: Double = 20

    /// Creates a comparison of exactly these settings, one entry per mode, keeping checkpoints
    /// and packed models in `directory`. The settings are checked when the comparison runs.
    public init(settings: [TrainingSettings], directory: URL, runtime: RuntimeConfiguration = RuntimeConfiguration(),
                resume: Bool = false, measuresLatency: Bool = true) {
        self.settings = settings
        self.directory = directory
        self.runtime = runtime
        self.resume = resume
        self.measuresLatency = measuresLatency
    }

    /// The comparison `lowbit train` runs by default: each of `modes` (nil is float) with
    /// `recipe`'s choices for `train` (epochs from the step budget, patch length, and for
    /// patches their regularisation), `base` giving everything the recipe does not choose.
    public init(modes: [QuantizationMode?] = [nil] + QuantizationMode.trainingOrder, for train: TimeSeriesDataset,
                base: TrainingSettings = TrainingSettings(), recipe: TrainingRecipe = TrainingRecipe(), directory: URL,
                runtime: RuntimeConfiguration = RuntimeConfiguration(), resume: Bool = false) {
        let settings = modes.map { mode in
            var s = recipe.settings(base, for: train)
            s.mode = mode
            s.quantizedBackward = base.quantizedBackward && mode != nil
            if mode == nil { (s.startsFromFloat, s.distillation) = (false, nil) }   // float learns from the labels
            return s
        }
        self.init(settings: settings, directory: directory, runtime: runtime, resume: resume)
    }

    /// What a comparison reports while it runs. Events come from the training threads:
    /// the handler must be safe to call from several threads at once.
    public enum Event: Sendable {
        /// A model continues from its checkpoint at `step` of `steps`.
        case resumed(model: String, step: Int, steps: Int)
        /// A model finished a training step.
        case progress(model: String, TrainingProgress)
        /// A model finished its training.
        case trained(model: String)
    }

    /// The comparison stopped because `shouldStop` said so; every unfinished model saved its
    /// checkpoint at the step it had reached.
    public struct Interrupted: Error, CustomStringConvertible {
        /// The checkpoints of the unfinished models.
        public var checkpoints: [URL]
        /// A one-line message that lists the paths of the saved checkpoints.
        public var description: String { "interrupted: checkpoints saved in " + checkpoints.map(\.path).joined(separator: ", ") }
    }

    /// One mode's outcome.
    public struct Result {
        /// The settings of the mode (its first model's; the others differ in their seed).
        public var settings: TrainingSettings
        /// The trained models, in ensemble order.
        public var runs: [ClassifierTraining]
        /// The packed ensemble, with its class names and standardization.
        public var model: PackedClassifier
        /// Where ``model`` was saved.
        public var modelFile: URL
        /// The packed model on the evaluation data (with its mean cross-entropy).
        public var evaluation: Evaluation
        /// Each model alone on the evaluation data (one entry for a single model).
        public var modelAccuracies: [Double]
        /// Median seconds of one sequence through the packed model (nil unless measured).
        public var latencySeconds: Double?
        /// The mean of the models' last-epoch training cross-entropy.
        public var finalLoss: Float { runs.map { $0.history.last?.trainLoss ?? .nan }.reduce(0, +) / Float(runs.count) }
        /// Seconds of every model's training steps, summed.
        public var trainSeconds: Double { runs.map(\.trainSeconds).reduce(0, +) }
    }

    /// Whether a quantized mode needs the trained float model, to start from or to learn from.
    public var needsFloat: Bool { settings.contains { $0.mode != nil && ($0.startsFromFloat || $0.distillation != nil) } }

    /// Where model `member` (from 0) of `settings`' mode keeps its checkpoint.
    public func checkpointFile(_ settings: TrainingSettings, member: Int) -> URL { memberFile("checkpoint", settings, member) }

    /// Where a run with checkpoint selection keeps its selected weights: beside its checkpoint.
    public func selectedFile(_ settings: TrainingSettings, member: Int) -> URL { memberFile("selected", settings, member) }

    /// `directory/MODE/STEM.safetensors` for the first model, `STEM-2.safetensors` for the second, …
    private func memberFile(_ stem: String, _ settings: TrainingSettings, _ member: Int) -> URL {
        directory.appendingPathComponent(settings.modeName)
            .appendingPathComponent(member == 0 ? "\(stem).safetensors" : "\(stem)-\(member + 1).safetensors")
    }

    /// Trains (or resumes) every mode on `train`, then packs each mode's ensemble, saves it,
    /// and evaluates it on `evaluation`. With `selection`, each model keeps the weights of its
    /// epoch with the lowest loss on that data. Packing, evaluation and the latency run one
    /// mode at a time after the training, on a quiet machine.
    public func run(train: TimeSeriesDataset, evaluation: TimeSeriesDataset, selection: TimeSeriesDataset? = nil,
                    events: @escaping @Sendable (Event) -> Void = { _ in },
                    shouldStop: @escaping @Sendable () -> Bool = { false }) throws -> [Result] {
        try check()
        try evaluation.checkEvaluable(trainedOn: train, source: evaluation.name)
        let floatIndex = settings.firstIndex { $0.mode == nil }
        let quantized = settings.indices.filter { $0 != floatIndex }
        let phases = needsFloat && !quantized.isEmpty ? [[floatIndex!], quantized] : [Array(settings.indices)]
        var results = [Result?](repeating: nil, count: settings.count)
        var floatRuns: [ClassifierTraining] = []
        let windowSize = max(train.maxLength, evaluation.maxLength)
        for phase in phases {
            let jobs = phase.flatMap { i in (0..<settings[i].ensembleSize).map { Job(mode: i, member: $0) } }
            let runs = try trainConcurrently(jobs, train: train, windowSize: windowSize, evaluation: evaluation, selection: selection,
                                             floatRuns: floatRuns, events: events, shouldStop: shouldStop)
            let stopped = zip(jobs, runs).filter { $0.1 == nil }.map { checkpointFile(settings[$0.0.mode], member: $0.0.member) }
            guard stopped.isEmpty else { throw Interrupted(checkpoints: stopped) }
            let kernels = try KernelsBackend(isa: runtime.isa, threads: runtime.threads)
            for i in phase {
                let own = zip(jobs, runs).filter { $0.0.mode == i }.map { $0.1! }
                results[i] = try finish(settings[i], runs: own, evaluation: evaluation, kernels: kernels)
                if i == floatIndex { floatRuns = own }
            }
        }
        return results.map { $0! }
    }

    /// Settings that cannot be compared: invalid ones, a mode twice, or a quantized mode that
    /// needs a float model the comparison does not train.
    func check() throws {
        guard !settings.isEmpty else { throw LowBitError.invalidArgument("a comparison needs at least one mode") }
        if let stopsAfterEpoch, stopsAfterEpoch < 1 { throw LowBitError.invalidArgument("the epoch to stop after must be at least 1, got \(stopsAfterEpoch)") }
        guard (1...64).contains(workersPerModel) else {
            throw LowBitError.invalidArgument("workers per model must be from 1 to 64, got \(workersPerModel)")
        }
        if let processGroup, processGroup.size > 1, workersPerModel > 1 {
            throw LowBitError.invalidArgument("a comparison splits its models' steps over workers or over a process group, not both")
        }
        for s in settings { try s.validate() }
        var seen = Set<String>()
        if let twice = settings.map(\.modeName).first(where: { !seen.insert($0).inserted }) {
            throw LowBitError.invalidArgument("mode \(twice) appears twice in the comparison")
        }
        if needsFloat, !settings.contains(where: { $0.mode == nil }) {
            throw LowBitError.invalidArgument("a quantized mode starts from or learns from the float model, but the comparison has no float mode")
        }
    }

    /// One model to train: settings[mode]'s ensemble member.
    struct Job: Sendable {
        var mode: Int
        var member: Int
    }

    /// The name a model goes by in events: "ternary", or "ternary 2/3" in an ensemble.
    public static func modelName(_ settings: TrainingSettings, member: Int) -> String {
        settings.modeName + (settings.ensembleSize == 1 ? "" : " \(member + 1)/\(settings.ensembleSize)")
    }

    /// Trains (or resumes) `jobs`, as many at a time as there are threads (each run then gets
    /// an equal share of them); the runs in `jobs` order, nil for one interrupted. A quantized
    /// model that starts from float, or learns from it, uses the float model of the same
    /// member in `floatRuns` (or, when several run at once, its own copy loaded from that
    /// model's checkpoint: a model's forward keeps its activations, so two runs cannot share one).
    func trainConcurrently(_ jobs: [Job], train: TimeSeriesDataset, windowSize: Int, evaluation: TimeSeriesDataset,
                           selection: TimeSeriesDataset?, floatRuns: [ClassifierTraining],
                           events: @escaping @Sendable (Event) -> Void, shouldStop: @escaping @Sendable () -> Bool) throws -> [ClassifierTraining?] {
        let perModel = workersPerModel, distributed = (processGroup?.size ?? 1) > 1
        let workers = distributed ? 1 : max(1, min(jobs.count, runtime.threads / perModel))
        var each = runtime
        each.threads = distributed ? runtime.threads : perModel > 1 ? 1 : max(1, runtime.threads / workers)
        let backends = try (0..<workers).map { _ in try each.makeBackend() }
        let shared = SharedRuns(jobs.count)
        let floatIndex = settings.firstIndex { $0.mode == nil }
        // Each thread touches only its own backend and float model, and each run's own objects.
        let work = UncheckedSendable((comparison: self, backends: backends, floatRuns: floatRuns))
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            let (comparison, backends, floatRuns) = work.value
            while let i = shared.next() {
                do {
                    let job = jobs[i]
                    var floatRun: ClassifierTraining?
                    if let floatIndex, job.mode != floatIndex, job.member < floatRuns.count {
                        floatRun = workers == 1 ? floatRuns[job.member]
                            : try ClassifierTraining(resumingFrom: comparison.checkpointFile(comparison.settings[floatIndex], member: job.member).path)
                    }
                    let run = try comparison.trainModel(job, train: train, windowSize: windowSize, evaluation: evaluation, selection: selection,
                                                        backend: backends[w], floatRun: floatRun, events: events,
                                                        shouldStop: { shouldStop() || shared.failed })
                    shared.set(i, run)
                } catch {
                    shared.fail(error)
                    return
                }
            }
        }
        if let error = shared.error { throw error }
        return shared.runs
    }

    /// Trains (or resumes) one model; nil when interrupted.
    func trainModel(_ job: Job, train: TimeSeriesDataset, windowSize: Int, evaluation: TimeSeriesDataset, selection: TimeSeriesDataset?,
                    backend: any Backend, floatRun: ClassifierTraining?, events: @Sendable (Event) -> Void,
                    shouldStop: () -> Bool) throws -> ClassifierTraining? {
        let wanted = settings[job.mode].member(job.member)
        let checkpoint = checkpointFile(settings[job.mode], member: job.member)
        try FileManager.default.createDirectory(at: checkpoint.deletingLastPathComponent(), withIntermediateDirectories: true)
        let name = Self.modelName(wanted, member: job.member)
        let run: ClassifierTraining
        if resume, FileManager.default.fileExists(atPath: checkpoint.path) {
            run = try ClassifierTraining(resumingFrom: checkpoint.path)
            guard run.settings == wanted else {
                throw LowBitError.invalidArgument("\(checkpoint.path) was trained with other settings (\(run.settings)); "
                                                  + "resume with the same settings, or start again without resuming")
            }
            events(.resumed(model: name, step: run.optimizer.step, steps: run.settings.epochs * run.stepsPerEpoch(train)))
        } else {
            run = try ClassifierTraining(settings: wanted, train: train, windowSize: windowSize,
                                         startingFrom: wanted.startsFromFloat ? floatRun : nil)
        }
        run.workers = workersPerModel
        run.processGroup = processGroup
        run.checkpointInterval = checkpointInterval
        let stopStep = stopsAfterEpoch.map { $0 * run.stepsPerEpoch(train) }
        if let stopStep, run.optimizer.step >= stopStep, !run.isFinished(train) { return nil }
        // About ten points of the evaluation curve: evaluating every epoch would cost a quarter of the time.
        let outcome = try run.run(train: train, evaluation: evaluation, teacher: wanted.distillation == nil ? nil : floatRun,
                                  backend: backend, checkpointPath: checkpoint.path,
                                  evaluationInterval: max(1, run.settings.epochs / 10),
                                  selection: selection.map { CheckpointSelection(data: $0, path: selectedFile(settings[job.mode], member: job.member).path) },
                                  progress: { events(.progress(model: name, $0)) },
                                  shouldStop: { shouldStop() || stopStep.map { run.optimizer.step >= $0 } ?? false })
        events(.trained(model: name))
        return outcome == .finished ? run : nil
    }

    /// Packs a mode's models into one ensemble, saves it, evaluates it and each model alone,
    /// and times it.
    func finish(_ settings: TrainingSettings, runs: [ClassifierTraining], evaluation: TimeSeriesDataset,
                kernels: KernelsBackend) throws -> Result {
        let packed = try PackedClassifier(ensemble: runs.map(\.model), info: runs[0].info, backend: kernels)
        let file = directory.appendingPathComponent(settings.modeName).appendingPathComponent("model.packed.safetensors")
        let writes = (processGroup?.rank ?? 0) == 0
        if writes { try packed.save(to: file) }
        let scored = try packed.evaluate(on: evaluation)
        let alone = runs.count == 1 ? [scored.accuracy] : try runs.map { run in
            try PackedClassifier(run.model, info: run.info, backend: kernels).evaluate(on: evaluation).accuracy
        }
        var latency: Double?
        if measuresLatency, writes {
            let one = try runs[0].info.batch(evaluation, [0], windowSize: packed.configuration.maxSteps).batch
            latency = try medianSeconds(budget: 0.3) { _ = try packed.logits(one) }
        }
        return Result(settings: settings, runs: runs, model: packed, modelFile: file, evaluation: scored,
                      modelAccuracies: alone, latencySeconds: latency)
    }
}

/// The work list and results of ``ModeComparison/trainConcurrently``, shared by its threads.
final class SharedRuns: @unchecked Sendable {
    private let lock = NSLock()
    private var taken = 0
    private(set) var runs: [ClassifierTraining?]
    private(set) var error: (any Error)?

    init(_ count: Int) { runs = Array(repeating: nil, count: count) }

    /// The next job's index, or nil when none is left or a run has failed.
    func next() -> Int? {
        lock.withLock {
            guard error == nil, taken < runs.count else { return nil }
            taken += 1
            return taken - 1
        }
    }

    func set(_ i: Int, _ run: ClassifierTraining?) { lock.withLock { runs[i] = run } }
    func fail(_ e: any Error) { lock.withLock { if error == nil { error = e } } }
    var failed: Bool { lock.withLock { error != nil } }
}

/// A value handed to other threads whose owner guarantees that they do not share it unsafely.
struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// Warm up (at least 2 calls and a fifth of the budget: the first tenths of a second of a
/// process run slow), then time repeats for about `budget` seconds (5 to 1000); the median.
public func medianSeconds(budget: Double, _ body: () throws -> Void) rethrows -> Double {
    let clock = ContinuousClock()
    func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18 }
    let warm = clock.now.advanced(by: .seconds(budget / 5))
    var calls = 0
    while calls < 2 || clock.now < warm {
        try body()
        calls += 1
    }
    let one = seconds(try clock.measure { try body() })
    let repeats = min(1000, max(5, Int(budget / max(one, 1e-7))))
    var times: [Double] = []
    times.reserveCapacity(repeats)
    for _ in 0..<repeats { times.append(seconds(try clock.measure { try body() })) }
    times.sort()
    return times[times.count / 2]
}
