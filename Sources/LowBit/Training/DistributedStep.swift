/// One optimisation step of a rank of a ``ProcessGroup``: the in-process data-parallel step
/// (DataParallelStep.swift) with this process as one of its workers.
///
/// Every rank builds the same batch and takes the same contiguous share of its sequences that
/// worker `rank` of a ``Trainer`` with `size` workers takes, and goes from its logits straight
/// to its rows' share of the loss (the gradient of the whole batch's mean) and its backward,
/// without waiting for the other ranks: the step has one meeting point, after the backward.
/// There the gradients (see `allReduceGradients`) are summed over the ranks, and then, in one
/// sum, the static-range statistics, each row's loss and each row's prediction (each rank
/// fills its own rows; the others' zeros add nothing, so these are exact); every rank clips and
/// updates identically. With two ranks each gradient sum is one addition, the same on both
/// ranks and the same as the in-process step's, so the run is bit for bit that of a `Trainer`
/// with two workers. With more, the sums' order is the group's.
extension Trainer {
    func distributedStep(_ batch: SequenceBatch, labels: [Int], group: any ProcessGroup,
                         teacher: (logits: Tensor, distillation: Distillation)?) throws -> (loss: Float, predictions: [Int]) {
        let s = batch.shape
        try checkShares(labels: labels, batch: s.batch, teacher: teacher)
        let count = min(group.size, s.batch), rank = group.rank
        let bounds = (0...count).map { s.batch * $0 / count }
        let rows = rank < count ? bounds[rank]..<bounds[rank + 1] : s.batch..<s.batch
        let exec = Execution(backend: backend, training: true, step: optimizer.step, rowOffset: rows.lowerBound * s.steps)

        let layers = model.quantizedLayers
        let before = layers.map(\.statistics)
        for layer in layers { layer.batchAbsmax = nil }
        let parameters = model.parameters
        for p in parameters { p.zeroGrad() }

        var rowLosses: [Double] = [], predictions: [Int] = []
        if !rows.isEmpty {
            let logits = try model.forward(try batch.sequences(rows), exec)
            let (losses, dLogits) = try rowObjective(logits, rows: rows, labels: labels, teacher: teacher, batchSize: s.batch)
            try model.backward(dLogits, exec)
            (rowLosses, predictions) = (losses, argmaxRows(logits))
        }

        try allReduceGradients(parameters, group: group)

        // One sum of doubles: each layer's sum of its real rows' absmax and their count (summed,
        // the whole batch's mean, as the in-process step adds its workers' shares), then each
        // row's loss and predicted class.
        let L = layers.count, lossAt = 2 * L, predictionAt = 2 * L + s.batch
        var shares = [Double](repeating: 0, count: 2 * L + 2 * s.batch)
        for (i, layer) in layers.enumerated() {
            guard let share = layer.batchAbsmax else { continue }
            (shares[i], shares[L + i]) = (share.sum, Double(share.rows))
        }
        for (k, row) in rows.enumerated() {
            (shares[lossAt + row], shares[predictionAt + row]) = (rowLosses[k], Double(predictions[k]))
        }
        try group.allReduceSum(&shares)
        for (i, layer) in layers.enumerated() {
            layer.statistics = shares[L + i] > 0
                ? ActivationStatistics(count: before[i].count + 1, sumOfAbsmax: before[i].sumOfAbsmax + shares[i] / shares[L + i])
                : before[i]
        }
        if let maxGradientNorm { clipGradients(parameters, maxNorm: maxGradientNorm) }
        optimizer.update(parameters)
        return (Loss.mean(Array(shares[lossAt..<predictionAt]), over: s.batch), shares[predictionAt...].map { Int($0) })
    }

    /// Sums the parameters' gradients over the ranks: each large one in place (copying 12 MB of
    /// a design-size model's gradients into one buffer and back took as long as the sum), the
    /// small ones (biases, layer norms) packed into one buffer kept from the last step, for one
    /// call instead of dozens (a call costs microseconds, as does copying 64 KB). With two ranks
    /// each value is the same one addition either way.
    private func allReduceGradients(_ parameters: [Parameter], group: any ProcessGroup) throws {
        let inPlace = gradientBucketLimit
        var small = reductionScratch
        reductionScratch = []   // a second reference would make the appends copy it
        small.removeAll(keepingCapacity: true)
        for p in parameters where p.count < inPlace { small.append(contentsOf: p.grad) }
        for p in parameters where p.count >= inPlace { try group.allReduceSum(&p.grad) }
        if !small.isEmpty { try group.allReduceSum(&small) }
        var offset = 0
        for p in parameters where p.count < inPlace {
            let n = p.count
            small.withUnsafeBufferPointer { g in
                p.grad.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: g.baseAddress! + offset, count: n) }
            }
            offset += n
        }
        reductionScratch = small
    }

    /// A checksum of the model's weights and the optimizer's state on every rank, in rank
    /// order: the ranks apply the same updates to the same weights, so they must agree.
    func checkRanksAgree(_ group: any ProcessGroup, after what: String) throws {
        var sum = 0.0, weighted = 0.0
        for p in model.parameters {
            for (i, v) in p.value.enumerated() {
                sum += Double(v)
                weighted += Double(v) * Double(i % 7 + 1)
            }
        }
        let sums = try group.allGather(sum), weights = try group.allGather(weighted)
        if let r = (1..<group.size).first(where: { sums[$0] != sums[0] || weights[$0] != weights[0] }) {
            throw LowBitError.invalidArgument("rank \(r)'s weights differ from rank 0's after \(what): the ranks must run the same "
                                              + "build on the same data with the same settings")
        }
    }
}
