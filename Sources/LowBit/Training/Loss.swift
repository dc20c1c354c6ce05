import Foundation

/// Losses: each returns the mean loss over the batch and its gradient with respect to the
/// predictions.
public enum Loss {
    /// Softmax cross-entropy of logits [batch, classes] against class indices.
    public static func softmaxCrossEntropy(logits: Tensor, labels: [Int]) throws -> (loss: Float, gradient: Tensor) {
        let n = try logits.matrixShape("logits").rows
        let (rowLosses, gradient) = try crossEntropyRows(logits: logits, labels: labels, batchSize: n)
        return (mean(rowLosses, over: n), try Tensor(shape: logits.shape, scalars: gradient))
    }

    /// The cross-entropy of a share of a batch's rows: each row's loss, and the gradient of the
    /// whole batch's mean with respect to these rows (`batchSize` is the batch's row count).
    /// Row by row the same operations as the whole batch's, so that workers that each take
    /// their own rows' share compute the same bits as one process taking all of them.
    static func crossEntropyRows(logits: Tensor, labels: [Int], batchSize n: Int) throws -> (rowLosses: [Double], gradient: [Float]) {
        let (rows, c) = try logits.matrixShape("logits")
        guard labels.count == rows else { throw LowBitError.invalidShape("\(labels.count) labels for \(rows) rows of logits") }
        try checkLabels(labels, classes: c)
        try logits.checkFinite("logits")
        var grad = [Float](repeating: 0, count: rows * c)
        var losses = [Double](repeating: 0, count: rows)
        for i in 0..<rows {
            let row = logits.scalars[(i * c)..<((i + 1) * c)]
            let m = row.max()!
            let z = row.reduce(Float(0)) { $0 + expf($1 - m) }
            losses[i] = Double(logf(z) + m - row[row.startIndex + labels[i]])
            for j in 0..<c {
                let p = expf(row[row.startIndex + j] - m) / z
                grad[i * c + j] = (p - (j == labels[i] ? 1 : 0)) / Float(n)
            }
        }
        return (losses, grad)
    }

    /// Every label is a class index below `classes`.
    static func checkLabels(_ labels: [Int], classes: Int) throws {
        if let bad = labels.firstIndex(where: { $0 < 0 || $0 >= classes }) {
            throw LowBitError.invalidArgument("label \(labels[bad]) at \(bad) is outside 0..<\(classes)")
        }
    }

    /// The teacher's logits are shaped as the student's, the weight is in [0, 1] and the
    /// temperature positive and finite.
    static func checkDistillation(teacherShape: [Int], studentShape: [Int], weight: Float, temperature: Float) throws {
        guard teacherShape == studentShape else {
            throw LowBitError.invalidShape("teacher logits \(teacherShape) and student logits \(studentShape) differ")
        }
        guard (0...1).contains(weight) else { throw LowBitError.invalidArgument("distillation weight must be in [0, 1], got \(weight)") }
        guard temperature > 0, temperature.isFinite else {
            throw LowBitError.invalidArgument("distillation temperature must be positive and finite, got \(temperature)")
        }
    }

    /// The mean of a batch's row losses, summed in row order.
    static func mean(_ rowLosses: [Double], over n: Int) -> Float {
        var total: Double = 0
        for l in rowLosses { total += l }
        return Float(total / Double(n))
    }

    /// Knowledge distillation (Hinton, Vinyals and Dean, 2015): the student learns from the
    /// labels and from a teacher's predictions softened by `temperature`, weighted `1 − weight`
    /// and `weight`. A low-bit student learns more from the float model's full distribution
    /// (which classes are near, and how near) than from the labels alone. The soft term is
    /// the cross-entropy between the tempered distributions, scaled by temperature² so that
    /// its gradient keeps its size as the temperature changes.
    ///
    /// Returns the objective, the plain cross-entropy against the labels (comparable between
    /// runs with and without a teacher) and the objective's gradient with respect to `logits`.
    public static func distillation(logits: Tensor, labels: [Int], teacherLogits: Tensor, weight: Float,
                                    temperature: Float) throws -> (loss: Float, crossEntropy: Float, gradient: Tensor) {
        try checkDistillation(teacherShape: teacherLogits.shape, studentShape: logits.shape, weight: weight, temperature: temperature)
        let n = labels.count
        let d = try distillationRows(logits: logits, labels: labels, teacherLogits: teacherLogits, weight: weight,
                                     temperature: temperature, batchSize: n)
        let hard = mean(d.rowCrossEntropies, over: n)
        let loss = (1 - weight) * hard + weight * temperature * temperature * Float(d.soft / Double(n))
        return (loss, hard, try Tensor(shape: logits.shape, scalars: d.gradient))
    }

    /// ``distillation(logits:labels:teacherLogits:weight:temperature:)`` for a share of a
    /// batch's rows, as ``crossEntropyRows(logits:labels:batchSize:)``: each row's
    /// cross-entropy against its label, the soft term's sum over these rows, and the gradient
    /// of the whole batch's objective with respect to these rows.
    static func distillationRows(logits: Tensor, labels: [Int], teacherLogits: Tensor, weight: Float, temperature: Float,
                                 batchSize n: Int) throws -> (rowCrossEntropies: [Double], soft: Double, gradient: [Float]) {
        try teacherLogits.checkFinite("teacher logits")
        let (hard, rowGradient) = try crossEntropyRows(logits: logits, labels: labels, batchSize: n)
        var gradient = rowGradient
        let (rows, c) = (labels.count, logits.shape[1])
        var soft: Double = 0
        for i in 0..<rows {
            let studentLog = logSoftmax(logits.scalars[(i * c)..<((i + 1) * c)], temperature: temperature)
            let teacher = logSoftmax(teacherLogits.scalars[(i * c)..<((i + 1) * c)], temperature: temperature).map(expf)
            for j in 0..<c {
                soft -= Double(teacher[j]) * Double(studentLog[j])
                // d/dz of T² · CE(teacher_T, softmax(z / T)) is T · (student_T − teacher_T).
                gradient[i * c + j] = (1 - weight) * gradient[i * c + j]
                    + weight * temperature * (expf(studentLog[j]) - teacher[j]) / Float(n)
            }
        }
        return (hard, soft, gradient)
    }

    /// log softmax(row / temperature), computed stably.
    static func logSoftmax(_ row: ArraySlice<Float>, temperature: Float) -> [Float] {
        let m = row.max()!
        let shifted = row.map { ($0 - m) / temperature }
        let logZ = logf(shifted.reduce(Float(0)) { $0 + expf($1) })
        return shifted.map { $0 - logZ }
    }

    /// Mean squared error over every element.
    public static func meanSquaredError(predictions: Tensor, targets: Tensor) throws -> (loss: Float, gradient: Tensor) {
        guard predictions.shape == targets.shape else {
            throw LowBitError.invalidShape("predictions \(predictions.shape) and targets \(targets.shape) differ")
        }
        try targets.checkFinite("targets")
        let n = Float(predictions.count)
        var total: Double = 0
        var grad = predictions
        for i in 0..<grad.count {
            let d = predictions.scalars[i] - targets.scalars[i]
            total += Double(d * d)
            grad.scalars[i] = 2 * d / n
        }
        return (Float(total / Double(n)), grad)
    }
}
