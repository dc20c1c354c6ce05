import ArgumentParser
import Foundation
import LowBit
#if LOWBIT_MPI
import LowBitMPI
#endif

/// `lowbit train`: the classifier (encoder + linear head) on a time-series dataset, in every
/// mode side by side, with checkpoints, packed models, metrics and curves.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train the sequence classifier in each mode and compare test accuracy, size and speed.",
        discussion: """
            Without arguments: the embedded JapaneseVowels dataset, every mode (float, int8, int4, ternary, binary), \
            the defaults below. Each mode trains an ensemble of --ensemble models, each from its own random initialisation \
            on the labels, and packs them into one model that averages their predictions. As many models train at a time \
            as there are threads (LOWBIT_THREADS), one thread each. With --distill W the quantized \
            modes also learn from the trained float model's predictions (knowledge distillation; float is then trained \
            first). With --from float the quantized modes are instead fine-tuned from the trained float model \
            (half the epochs, at a learning rate that grows with how coarse the mode is). Per mode, --out/MODE/ receives checkpoint.safetensors (resumable; \
            checkpoint-2.safetensors and so on for the ensemble's other models), model.packed.safetensors (the packed model `lowbit eval` runs), metrics.json and curve.svg. \
            Ctrl-C stops after the current step and saves the checkpoint; --resume continues from it. \
            With --distributed, under `mpirun -np P` (a lowbit built with `--traits MPI`), every model's steps are split \
            over the P ranks; rank 0 alone writes and prints.
            """)

    @OptionGroup var dataOptions: DataOptions
    @Option(help: "Modes: all, or a comma-separated list of float, int8, int4, ternary, binary.") var mode = "all"
    @Option(help: "Optimizer steps per model (the step budget; default \(TrainingRecipe().steps)): the epochs follow from the training set's size.")
    var steps: Int?
    @Option(help: "Epochs (instead of the step budget).") var epochs: Int?
    @Option(help: "Steps per token: the encoder reads patches of this many steps (default: enough for the longest series to fit in \(TrainingRecipe().maxTokens) tokens, and for a token of raw values to hold at least \(TrainingRecipe().minTokenValues) values; 1 for JapaneseVowels).")
    var patchLength: Int?
    @Option(help: "What a token holds: patches (the raw values of a patch) or convolution (84 kernel features per channel and dilation of each patch, and a summary token). Default: convolution where raw tokens would need patches of more than one step (long or narrow series), patches otherwise.")
    var tokens: TokenKind?
    @Option(help: "Sequences per step.") var batchSize: Int?
    @Option(help: "Peak learning rate (warmup, then cosine decay).") var lr: Float?
    @Option(help: "Seed of initialisation, dropout and batch order.") var seed: UInt64 = 0
    @Option(help: "Hidden size of the encoder.") var hiddenSize: Int?
    @Option(help: "Transformer blocks.") var layers: Int?
    @Option(help: "Attention heads.") var heads: Int?
    @Flag(inversion: .prefixedNo, help: "Add a sinusoidal encoding of each step's position to the encoder's input (default: on).")
    var positionalEncoding: Bool?
    @Option(help: "Models trained per mode, each from its own seed; the packed model averages their predicted probabilities (default 2; 1 for a single model).")
    var ensemble: Int?
    @Option(help: "Dropout rate (default \(TrainingRecipe().patchDropout) for patches of raw values, \(TrainingSettings().dropout) otherwise).")
    var dropout: Float?
    @Option(help: "Augmentation: drop up to this share of each training series' first steps, drawn at every step (default \(TrainingRecipe().patchAugmentation.crop) for patches of raw values, 0 otherwise; with convolution tokens it acts on the tokens).")
    var crop: Float?
    @Option(help: "Augmentation: multiply each training series by a factor drawn from [1 - S, 1 + S] at every step (default \(TrainingRecipe().patchAugmentation.scale) for patches of raw values, 0 otherwise; with convolution tokens it acts on the tokens).")
    var scale: Float?
    @Option(help: "Augmentation: add uniform noise of this amplitude to every standardized training value (default \(TrainingRecipe().patchAugmentation.jitter) for patches of raw values, 0 otherwise; with convolution tokens it acts on the tokens).")
    var jitter: Float?
    @Option(help: "AdamW weight decay.") var weightDecay: Float?
    @Flag(help: "Quantized backward (QT): int8 backward matmuls.") var qt = false
    @Option(help: "Where the quantized modes start: scratch (a random initialisation) or float (fine-tune the trained float model, which is then trained first).")
    var from: Start = .scratch
    @Option(help: "Epochs of fine-tuning from float (default: half of --epochs).") var qatEpochs: Int?
    @Option(help: "Peak learning rate of fine-tuning from float (default: --lr / 8 for int8 and int4, --lr / 2 for ternary and binary).")
    var qatLr: Float?
    @Option(help: "Share of the float model's predictions in what every quantized mode learns from (knowledge distillation; default 0: the labels alone). Float is then trained first.")
    var distill: Float?
    @Option(help: "Temperature of distillation (softens the predictions; default 2).") var distillTemperature: Float?
    @Option(help: "Hold out this fraction of the training data and evaluate on it instead of the test split (for choosing settings).")
    var validation: Double?
    @Option(help: "Checkpoint selection: hold out this fraction of the training data (after --validation's), score every epoch on it, and keep the weights of the epoch with the lowest loss (default: none; the last epoch's weights).")
    var selectOn: Double?
    @Option(help: "Split each model's batches over this many copies of it, one thread each (data-parallel: for one model on several cores; the result then depends on N in its last bits). Default 1: models train side by side, one thread each, and the thread count never changes a result.")
    var workers = 1
    @Flag(help: "Split every model's steps over the ranks of `mpirun -np P` (needs a lowbit built with `swift build --traits MPI`): each rank runs its share of every batch, on LOWBIT_THREADS threads (default: its share of the machine's CPUs), and the ranks' gradients are summed at every step. Rank 0 alone writes and prints. With 2 ranks the models are those of --workers 2 bit for bit; --resume works with another P.")
    var distributed = false
    @Option(help: "Stop every model after this epoch, its checkpoint saved; run again with --resume (and without this option, or a later epoch) to continue.")
    var stopAfterEpoch: Int?
    @Option(help: "The least seconds between two checkpoints written at an epoch's end (besides the first and last epochs' and a stop's); 0 writes one every epoch.")
    var checkpointEvery: Double = 20
    @Option(help: "Output directory.") var out = "out/train"
    @Flag(help: "Continue each mode from its checkpoint in --out.") var resume = false
    @Flag(help: "Print only a JSON array (one object per mode) on standard output.") var json = false

    enum Start: String, ExpressibleByArgument, CaseIterable { case float, scratch }

    /// The recipe, with --steps if given.
    var recipe: TrainingRecipe {
        var r = TrainingRecipe()
        if let steps { r.steps = steps }
        return r
    }

    /// The options given that override a choice of the recipe.
    var overridingOptions: [String] {
        [("--steps", steps != nil), ("--epochs", epochs != nil), ("--tokens", tokens != nil), ("--patch-length", patchLength != nil), ("--dropout", dropout != nil),
         ("--crop", crop != nil), ("--scale", scale != nil), ("--jitter", jitter != nil)].filter(\.1).map(\.0)
    }

    /// The settings of `mode`; with `train`, adapted to its shape by the recipe.
    func settings(_ mode: QuantizationMode?, for train: TimeSeriesDataset? = nil) -> TrainingSettings {
        guard let mode else { return schedule(nil, for: train) }
        var s = schedule(mode, for: train)
        if from == .float {
            s = schedule(nil, for: train).fineTuning(mode, quantizedBackward: qt)
            if let qatEpochs { s.epochs = qatEpochs }
            if let qatLr { s.learningRate = qatLr }
        }
        s.distillation = distillation(mode)
        return s
    }

    /// How `mode` learns from the float model, if --distill says it does.
    func distillation(_ mode: QuantizationMode) -> Distillation? {
        var d = distill.flatMap { $0 > 0 ? Distillation(weight: $0) : nil }
        if let t = distillTemperature { d?.temperature = t }
        return d
    }

    /// The model, schedule and regularisation of a run from scratch.
    func schedule(_ mode: QuantizationMode?, for train: TimeSeriesDataset? = nil) -> TrainingSettings {
        var s = TrainingSettings(mode: mode, quantizedBackward: qt && mode != nil, seed: seed)
        if let batchSize { s.batchSize = batchSize }
        if let train { s = recipe.settings(s, for: train, tokens: tokens, patchLength: patchLength, epochs: epochs) }
        if let epochs { s.epochs = epochs }
        if let patchLength { s.patchLength = patchLength }
        if let tokens { s.tokens = tokens }
        if let lr { s.learningRate = lr }
        if let hiddenSize { s.width = hiddenSize }
        if let layers { s.layerCount = layers }
        if let heads { s.headCount = heads }
        if let positionalEncoding { s.usesPositionalEncoding = positionalEncoding }
        if let dropout { s.dropout = dropout }
        if let crop { s.augmentation.crop = crop }
        if let scale { s.augmentation.scale = scale }
        if let jitter { s.augmentation.jitter = jitter }
        if let ensemble { s.ensembleSize = ensemble }
        if let weightDecay { s.weightDecay = weightDecay }
        return s
    }

    func validate() throws {
        if let validation, !(validation > 0 && validation < 1) { throw ValidationError("--validation must be in (0, 1), got \(validation)") }
        if let selectOn, !(selectOn > 0 && selectOn < 1) { throw ValidationError("--select-on must be in (0, 1), got \(selectOn)") }
        if let steps, steps <= 0 { throw ValidationError("--steps must be positive, got \(steps)") }
        guard (1...64).contains(workers) else { throw ValidationError("--workers must be from 1 to 64, got \(workers)") }
        if !(checkpointEvery >= 0 && checkpointEvery.isFinite) { throw ValidationError("--checkpoint-every must be non-negative and finite, got \(checkpointEvery)") }
        if let stopAfterEpoch, stopAfterEpoch < 1 { throw ValidationError("--stop-after-epoch must be at least 1, got \(stopAfterEpoch)") }
        if distributed, workers > 1 { throw ValidationError("--distributed and --workers both split a model's steps: give one") }
        if steps != nil, epochs != nil { throw ValidationError("--steps and --epochs both set the run's length: give one") }
        if let qatEpochs, qatEpochs <= 0 { throw ValidationError("--qat-epochs must be positive, got \(qatEpochs)") }
        if let qatLr, !(qatLr > 0 && qatLr.isFinite) { throw ValidationError("--qat-lr must be positive and finite, got \(qatLr)") }
        if let distill, !(distill >= 0 && distill <= 1) { throw ValidationError("--distill must be in [0, 1], got \(distill)") }
        if let t = distillTemperature, !(t > 0 && t.isFinite) { throw ValidationError("--distill-temperature must be positive and finite, got \(t)") }
        if (distill ?? 0) == 0, distillTemperature != nil { throw ValidationError("--distill-temperature applies only with --distill above 0") }
        for m in try parseModes(mode) { try settings(m).validate() }
        if from == .scratch, qatEpochs != nil || qatLr != nil { throw ValidationError("--qat-epochs and --qat-lr apply to --from float only") }
    }

    /// Whether the quantized modes need the trained float model: to start from, or to learn from.
    var needsFloat: Bool {
        from == .float || ((try? parseModes(mode)) ?? []).contains { $0.map { distillation($0) != nil } ?? false }
    }

    /// The modes in training order: float first when the quantized modes start from it or
    /// learn from it (added if not asked for), each mode once.
    func trainingOrder() throws -> [QuantizationMode?] {
        var modes: [QuantizationMode?] = []
        for m in try parseModes(mode) where !modes.contains(m) { modes.append(m) }
        guard needsFloat, modes.contains(where: { $0 != nil }) else { return modes }
        return [nil] + modes.filter { $0 != nil }
    }

    func run() throws {
        guard distributed else { return try report(trainModes(group: nil)) }
        #if LOWBIT_MPI
        let group = try MPIProcessGroup.world()
        do {
            let outcome = try trainModes(group: group)
            if group.rank == 0 { try report(outcome) }
        } catch let exit as ExitCode {
            group.finalize()
            throw exit
        } catch {
            // The other ranks would wait for this one in their next sum: stop them all.
            printError("lowbit train --distributed: rank \(group.rank) of \(group.size) failed: \(error)")
            group.abort(1)
        }
        group.finalize()
        #else
        throw ValidationError("--distributed needs a lowbit built with MPI: install Open MPI (Debian: apt-get install -y openmpi-bin libopenmpi-dev), "
                              + "build with `swift build -c release --traits MPI`, then run `mpirun -np P .build/release/lowbit train --distributed …`")
        #endif
    }

    /// Prints the table (and the JSON array with --json).
    func report(_ outcome: (results: [TrainResult], evaluationName: String, seconds: Double)) throws {
        let (results, evaluationName, total) = outcome
        if json {
            try printJSON(results)
        }
        let table = TrainResult.table(results, evaluationName: evaluationName)
        json ? printError(table) : printOutput(table)
        let line = String(format: "total %.1f s for %d mode(s)", total, results.count)
        json ? printError(line) : printOutput(line)
    }

    /// Trains, packs and evaluates every mode asked for, writes their files and summary.json;
    /// returns each mode's result, the name of the split they were evaluated on, and the
    /// wall-clock seconds of it all. Progress goes to standard error with --json.
    func trainModes(group: (any ProcessGroup)?) throws -> (results: [TrainResult], evaluationName: String, seconds: Double) {
        var config = try runtimeConfiguration()
        let speaks = (group?.rank ?? 0) == 0
        #if LOWBIT_MPI
        if let group = group as? MPIProcessGroup, ProcessInfo.processInfo.environment["LOWBIT_THREADS"] == nil {
            config.threads = max(1, config.threads / group.localSize)   // the ranks on this machine share its CPUs
        }
        #endif
        let modes = try trainingOrder()
        var (train, test, testSource) = try dataOptions.load(seed: seed)
        var evaluationName = "test"
        if let validation {
            (train, test) = try train.split(holdingOut: validation, seed: seed ^ 0xFA11)
            (testSource, evaluationName) = ("\(Int(validation * 100))% of the training data (validation; the test split is not read)", "validation")
        }
        var selection: TimeSeriesDataset?
        if let selectOn {
            let (rest, held) = try train.split(holdingOut: selectOn, seed: seed ^ 0x5E1E)
            guard rest.count >= 2, held.count >= 1 else {
                throw ValidationError("--select-on \(selectOn) leaves \(rest.count) training and \(held.count) selection series of \(train.count); use another fraction")
            }
            (train, selection) = (rest, held)
        }
        let display = ProgressDisplay()
        let say: @Sendable (String) -> Void = { [json] in if speaks { display.say($0, onStandardOutput: !json) } }
        say("\(train.name): \(train.count) training series, \(test.count) \(evaluationName) series (\(testSource)); "
            + "\(train.channels) channels, lengths \(train.lengths.min()!)–\(train.maxLength), \(train.classNames.count) classes"
            + (selection.map { "; \($0.count) more held out for checkpoint selection (--select-on)" } ?? ""))
        let chosen = settings(nil, for: train)
        let shape = chosen.tokenShape(of: train)
        say("recipe: \(chosen.epochs) epochs of \(settings(nil, for: train).stepsPerEpoch(train.count)) steps"
            + (epochs == nil ? " (a budget of \(recipe.steps) steps)" : " (--epochs)")
            + ", \(chosen.tokens == .convolution ? "convolution tokens" : "tokens of raw values")" + (tokens == nil ? "" : " (--tokens)")
            + ", patch length \(chosen.patchLength)" + (patchLength == nil ? "" : " (--patch-length)")
            + ": the longest series is \(shape.tokens) token\(shape.tokens == 1 ? "" : "s") of \(shape.values) values"
            + "; dropout \(chosen.dropout), " + (chosen.augmentation.isActive
                ? "augmentation crop \(chosen.augmentation.crop), scale \(chosen.augmentation.scale), jitter \(chosen.augmentation.jitter)"
                : "no augmentation"))
        let atOnce = max(1, min(modes.map { settings($0).ensembleSize }.reduce(0, +), config.threads / workers))
        say("backend \(try config.makeBackend().identity); output in \(out)/"
            + (group.map { "; every model's steps split over \($0.size) ranks (--distributed), \(config.threads) thread\(config.threads == 1 ? "" : "s") each" } ?? "")
            + (group != nil ? "" : workers > 1 ? "; \(atOnce) model\(atOnce == 1 ? "" : "s") at a time, each step split over \(workers) workers (--workers)"
               : atOnce > 1 ? "; \(atOnce) models at a time, \(config.threads / atOnce) thread\(config.threads / atOnce == 1 ? "" : "s") each" : ""))
        let quantized = modes.compactMap { $0 }
        if let first = quantized.first, needsFloat {
            var how: [String] = []
            if from == .float {
                let epochs = settings(first, for: train).epochs
                how.append("the quantized modes are fine-tuned from the float model (\(epochs) epoch\(epochs == 1 ? "" : "s"), peak lr "
                           + quantized.map { "\($0.rawValue) \(settings($0, for: train).learningRate)" }.joined(separator: ", ") + ")")
            }
            let learners = quantized.filter { distillation($0) != nil }
            if let d = learners.first.flatMap(distillation) {
                how.append(learners.map(\.rawValue).joined(separator: ", ") + (learners.count == 1 ? " learns" : " learn")
                           + " from the float model's predictions as well as the labels (distillation weight \(d.weight), temperature \(d.temperature))")
            }
            say(how.joined(separator: "; ")
                + (try parseModes(mode).contains(nil) ? "" : "; float is trained first"))
        }
        if speaks { try DirectoryLock.acquire(out) }
        Interrupt.install()

        var comparison = ModeComparison(settings: modes.map { settings($0, for: train) }, directory: URL(fileURLWithPath: out),
                                        runtime: config, resume: resume)
        comparison.workersPerModel = workers
        comparison.processGroup = group
        comparison.stopsAfterEpoch = stopAfterEpoch
        comparison.checkpointInterval = checkpointEvery
        let width = Self.labelWidth(comparison)
        let started = Date()
        let outcomes: [ModeComparison.Result]
        do {
            outcomes = try comparison.run(train: train, evaluation: test, selection: selection, events: { event in
                switch event {
                case let .resumed(model, step, steps): say("\(model): resuming at step \(step) of \(steps)")
                case let .progress(model, p): if speaks { display.update(pad(model, width), p) }
                case let .trained(model): if speaks { display.finish(pad(model, width)) }
                }
            }, shouldStop: { Interrupt.requested })
        } catch let stop as ModeComparison.Interrupted {
            let asked = !Interrupt.requested && stopAfterEpoch != nil
            for path in stop.checkpoints where speaks {
                printError((asked ? "stopped after epoch \(stopAfterEpoch!) (--stop-after-epoch)" : "interrupted")
                           + ": checkpoint saved in \(path.path); run the same command with --resume to continue")
            }
            throw asked ? ExitCode.success : ExitCode(130)
        } catch LowBitError.invalidArgument(let message) where message.contains("was trained with other settings") {
            throw ValidationError(message)
        }
        let total = Date().timeIntervalSince(started)
        guard speaks else { return ([], evaluationName, total) }
        var results: [TrainResult] = []
        for outcome in outcomes {
            results.append(try report(outcome, train: train, evaluationName: evaluationName, say: say))
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        try encoder.encode(results).write(to: URL(fileURLWithPath: out).appendingPathComponent("summary.json"))
        return (results, evaluationName, total)
    }

    /// The width of the model names in the progress display: 8, or 12 with an ensemble.
    static func labelWidth(_ comparison: ModeComparison) -> Int {
        comparison.settings.contains { $0.ensembleSize > 1 } ? 12 : 8
    }

    /// A mode's row of the table and --json, its metrics.json and curve.svg, and its line of progress.
    func report(_ outcome: ModeComparison.Result, train: TimeSeriesDataset, evaluationName: String, say: (String) -> Void) throws -> TrainResult {
        let wanted = outcome.settings, runs = outcome.runs, evaluation = outcome.evaluation
        let dir = URL(fileURLWithPath: out).appendingPathComponent(wanted.modeName)
        let result = TrainResult(
            mode: wanted.modeName, testAccuracy: evaluationName == "test" ? evaluation.accuracy : nil,
            validationAccuracy: evaluationName == "validation" ? evaluation.accuracy : nil, modelAccuracies: outcome.modelAccuracies,
            finalLoss: outcome.finalLoss, evaluationLoss: evaluation.meanCrossEntropy.map(Float.init), trainSeconds: outcome.trainSeconds,
            packedBytes: outcome.model.weightBytes, latencyMs: (outcome.latencySeconds ?? .nan) * 1e3,
            epochs: wanted.epochs, steps: runs[0].optimizer.step, seed: wanted.seed, settings: wanted,
            recipe: RecipeChoices(recipe: recipe, train: train, settings: wanted, steps: steps, epochs: epochs, patchLength: patchLength,
                                  selectOn: selectOn, selectedEpochs: runs.compactMap(\.selectedEpoch), overridden: overridingOptions))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        try encoder.encode(Metrics(result: result, history: runs[0].history, histories: runs.map(\.history), confusion: evaluation))
            .write(to: dir.appendingPathComponent("metrics.json"))
        let what = runs.count == 1 ? "" : " (ensemble of \(runs.count))"
        try CurvePlot.svg(title: "\(train.name) — \(wanted.modeName)\(what): \(evaluationName) accuracy \(String(format: "%.4f", evaluation.accuracy))",
                          histories: runs.map(\.history), evaluationName: evaluationName)
            .write(to: dir.appendingPathComponent("curve.svg"), atomically: true, encoding: .utf8)
        let models = runs.count == 1 ? "" : " (the \(runs.count) models alone: " + outcome.modelAccuracies.map { String(format: "%.4f", $0) }.joined(separator: ", ") + ")"
        say("\(wanted.modeName): \(evaluationName) " + String(format: "accuracy %.4f", evaluation.accuracy) + models
            + String(format: ", final loss %.4f, %.1f s", result.finalLoss, result.trainSeconds)
            + (selectOn == nil ? "" : "; weights of epoch " + runs.compactMap { $0.selectedEpoch.map(String.init) }.joined(separator: ", ")
               + " of \(wanted.epochs) (lowest selection loss)"))
        return result
    }
}

/// One mode's outcome: a row of the table and an object of `--json`.
struct TrainResult: Codable {
    var mode: String
    var testAccuracy: Double?
    var validationAccuracy: Double?
    /// Each model's accuracy on its own (one entry for a single model).
    var modelAccuracies: [Double]
    /// The mean of the models' last-epoch training cross-entropy.
    var finalLoss: Float
    /// The packed model's mean cross-entropy on the evaluation split: a finer measure than
    /// accuracy for comparing settings.
    var evaluationLoss: Float?
    /// Of every model's training steps.
    var trainSeconds: Double
    var packedBytes: Int
    var latencyMs: Double
    var epochs: Int
    /// Per model.
    var steps: Int
    var seed: UInt64
    var settings: TrainingSettings
    var recipe: RecipeChoices

    enum CodingKeys: String, CodingKey {
        case mode, epochs, steps, seed, settings, recipe
        case testAccuracy = "test_accuracy", validationAccuracy = "validation_accuracy", modelAccuracies = "model_accuracies"
        case finalLoss = "final_loss", evaluationLoss = "evaluation_loss"
        case trainSeconds = "train_seconds", packedBytes = "packed_bytes", latencyMs = "latency_ms"
    }
    static func table(_ rows: [TrainResult], evaluationName: String) -> String {
        var s = "mode      \(pad(evaluationName + " acc", 10)) final loss  train s   packed bytes  latency ms\n"
        for r in rows {
            let acc = r.testAccuracy ?? r.validationAccuracy ?? .nan
            s += pad(r.mode, 9) + " " + pad(String(format: "%.4f", acc), 10) + " " + pad(String(format: "%.4f", r.finalLoss), 11)
                + " " + pad(String(format: "%.1f", r.trainSeconds), 9) + " " + pad(String(r.packedBytes), 13)
                + " " + String(format: "%.3f", r.latencyMs) + "\n"
        }
        return s
    }
}

/// What the recipe chose for this data, and which choices an option made instead.
struct RecipeChoices: Codable {
    /// Optimizer steps the epochs were derived from (nil when --epochs set them).
    var stepBudget: Int?
    var epochs: Int
    var warmupEpochs: Int
    var patchLength: Int
    /// What a token holds: "patches" (raw values) or "convolution" (features).
    var tokenKind: TokenKind
    /// Tokens of the longest training series, and values per token.
    var tokens: Int
    var tokenValues: Int
    var maxTokens: Int
    var minTokenValues: Int
    /// The regularisation the run got (the recipe's for patches, unless overridden).
    var dropout: Float
    var augmentation: Augmentation
    /// The options that overrode the recipe.
    var overridden: [String]
    /// With --select-on: the fraction held out for checkpoint selection, and the epoch each
    /// model's weights come from.
    var selectOn: Double?
    var selectedEpochs: [Int]?

    init(recipe: TrainingRecipe, train: TimeSeriesDataset, settings: TrainingSettings, steps: Int?, epochs: Int?, patchLength: Int?,
         selectOn: Double?, selectedEpochs: [Int], overridden: [String]) {
        stepBudget = epochs == nil ? recipe.steps : nil
        self.epochs = settings.epochs
        warmupEpochs = settings.warmupEpochs
        self.patchLength = settings.patchLength
        tokenKind = settings.tokens
        (tokens, tokenValues) = settings.tokenShape(of: train)
        maxTokens = recipe.maxTokens
        minTokenValues = recipe.minTokenValues
        dropout = settings.dropout
        augmentation = settings.augmentation
        self.overridden = overridden
        self.selectOn = selectOn
        self.selectedEpochs = selectOn == nil ? nil : selectedEpochs
    }

    enum CodingKeys: String, CodingKey {
        case epochs, tokens, overridden, dropout, augmentation
        case stepBudget = "step_budget", warmupEpochs = "warmup_epochs", patchLength = "patch_length"
        case tokenKind = "token_kind", tokenValues = "token_values"
        case maxTokens = "max_tokens", minTokenValues = "min_token_values"
        case selectOn = "select_on", selectedEpochs = "selected_epochs"
    }
}

/// metrics.json: the result, the per-epoch history and the confusion matrix.
struct Metrics: Codable {
    var result: TrainResult
    /// The first model's; `histories` has every model's.
    var history: [EpochRecord]
    var histories: [[EpochRecord]]
    var confusion: Evaluation
}

extension TokenKind: ExpressibleByArgument {}
