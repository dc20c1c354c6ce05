import Dispatch

/// One optimisation step with the batch's sequences split over the trainer's workers: worker
/// r runs the forward, its rows' share of the loss (the whole batch's mean) and the backward of
/// its contiguous share of sequences on its own copy of the model and a one-thread backend; the
/// copies' gradients are added into the model's in worker order; the model alone
/// clips and updates, and the copies take its new weights at the next step.
///
/// Each sequence's forward does not depend on the others in its batch (attention stays inside
/// a sequence, activations are quantized per token, dropout draws the rows' own masks), so
/// what changes with the worker count is only the order in which the tokens' contributions to
/// each weight gradient are summed.
extension Trainer {
    func dataParallelStep(_ batch: SequenceBatch, labels: [Int],
                          teacher: (logits: Tensor, distillation: Distillation)?) throws -> (loss: Float, predictions: [Int]) {
        let s = batch.shape, count = min(workers, s.batch)
        try checkShares(labels: labels, batch: s.batch, teacher: teacher)
        try prepareWorkers(count)
        let models = [model] + replicas.prefix(count - 1)
        let bounds = (0...count).map { s.batch * $0 / count }
        let shards = try (0..<count).map { r in try batch.sequences(bounds[r]..<bounds[r + 1]) }
        let execs = (0..<count).map { r in
            Execution(backend: workerBackends[r], training: true, step: optimizer.step, rowOffset: bounds[r] * s.steps)
        }
        // The static-range statistics: each copy measures its share; the model keeps the whole
        // batch's (one batch, the mean over all its real rows).
        let quantized = models.map(\.quantizedLayers)
        let before = quantized[0].map(\.statistics)
        for copy in quantized { for layer in copy { layer.batchAbsmax = nil } }
        for m in models { for p in m.parameters { p.zeroGrad() } }

        // Each worker goes on from its logits to its rows' share of the loss and to its backward,
        // without waiting for the others': the rows' gradients are the whole batch's rows.
        let results = try parallel(count) { r in
            let logits = try models[r].forward(shards[r], execs[r])
            let (losses, dLogits) = try rowObjective(logits, rows: bounds[r]..<bounds[r + 1], labels: labels, teacher: teacher,
                                                     batchSize: s.batch)
            try models[r].backward(dLogits, execs[r])
            return (losses, argmaxRows(logits))
        }

        // The copies' gradients added in worker order, the update element by element: both
        // shared out over the workers' threads by parameter, which leaves every sum's order as
        // it is (the clipping norm, a sum over all parameters, stays on one thread).
        let parameters = model.parameters
        let copies = models.dropFirst().map(\.parameters)
        forEachShare(of: parameters, threads: count) { i in
            for copy in copies { parameters[i].accumulate(copy[i].grad) }
        }
        for (i, layer) in quantized[0].enumerated() {
            let shares = quantized.compactMap { $0[i].batchAbsmax }
            guard !shares.isEmpty else { continue }
            var sum = 0.0, rows = 0
            for share in shares { (sum, rows) = (sum + share.sum, rows + share.rows) }
            layer.statistics = ActivationStatistics(count: before[i].count + 1, sumOfAbsmax: before[i].sumOfAbsmax + sum / Double(rows))
        }
        if let maxGradientNorm { clipGradients(parameters, maxNorm: maxGradientNorm) }
        optimizer.update(parameters, threads: count)
        return (Loss.mean(results.flatMap(\.0), over: s.batch), results.flatMap(\.1))
    }

    /// The copies and one-thread backends of `count` workers, holding the model's current
    /// weights, quantization and static ranges.
    private func prepareWorkers(_ count: Int) throws {
        while replicas.count < count - 1 { replicas.append(try model.copy()) }
        if workerBackends.count < count {
            let one: any Backend = switch backend {
            case let k as KernelsBackend: try KernelsBackend(isa: k.isa, threads: 1)
            case is BLASBackend: BLASBackend(threads: 1)
            default: backend
            }
            workerBackends = Array(repeating: one, count: count)
        }
        for copy in replicas.prefix(count - 1) {
            // the model's weights change at every update, so they are copied at every step
            for (p, q) in zip(model.parameters, copy.parameters) { q.value = p.value }
            for (a, b) in zip(copy.encoder.linears, model.encoder.linears) {
                a.quantization = b.quantization
                a.usesStaticRange = b.usesStaticRange
                a.statistics = b.statistics
            }
        }
    }
}

/// Runs `body(r)` for r in 0..<count side by side and returns the results in order, or
/// rethrows the first worker's error (in worker order).
private func parallel<T>(_ count: Int, _ body: (Int) throws -> T) throws -> [T] {
    let slots = UnsafeMutableBufferPointer<Result<T, any Error>?>.allocate(capacity: count)
    slots.initialize(repeating: nil)
    defer { slots.deinitialize(); slots.deallocate() }
    withoutActuallyEscaping(body) { body in
        nonisolated(unsafe) let body = body
        nonisolated(unsafe) let slots = slots
        DispatchQueue.concurrentPerform(iterations: count) { r in slots[r] = Result { try body(r) } }
    }
    return try slots.map { try $0!.get() }
}

/// Runs `body(i)` for every index of `parameters`, the indices shared out over `threads`
/// threads in contiguous runs of about equal element counts; one thread runs them in order.
func forEachShare(of parameters: [Parameter], threads: Int, _ body: (Int) -> Void) {
    guard threads > 1, parameters.count > 1 else {
        for i in parameters.indices { body(i) }
        return
    }
    let total = parameters.reduce(0) { $0 + $1.count }
    var bounds = [0], running = 0
    for (i, p) in parameters.enumerated() {
        running += p.count
        if bounds.count < threads && running * threads >= total * bounds.count { bounds.append(i + 1) }
    }
    if bounds.last != parameters.count { bounds.append(parameters.count) }
    let shares = bounds
    withoutActuallyEscaping(body) { body in
        nonisolated(unsafe) let body = body
        DispatchQueue.concurrentPerform(iterations: shares.count - 1) { share in
            for i in shares[share]..<shares[share + 1] { body(i) }
        }
    }
}
