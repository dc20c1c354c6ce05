import Foundation

/// Losses: each returns the mean loss over the batch and its gradient with respect to the
/// predictions.
public enum Loss {
    /// Softmax cross-entropy of logits [batch, classes] against class indices.
    public static func softmaxCrossEntropy(logits: Tensor, labels: [Int]) throws -> (loss: Float, gradient: Tensor) {
        let (n, c) = try logits.matrixShape("logits")
        guard labels.count == n else { throw LowBitError.invalidShape("\(labels.count) labels for \(n) rows of logits") }
        if let bad = labels.firstIndex(where: { $0 < 0 || $0 >= c }) {
            throw LowBitError.invalidArgument("label \(labels[bad]) at \(bad) is outside 0..<\(c)")
        }
        try logits.checkFinite("logits")
        var grad = [Float](repeating: 0, count: n * c)
        var total: Double = 0
        for i in 0..<n {
            let row = logits.scalars[(i * c)..<((i + 1) * c)]
            let m = row.max()!
            let z = row.reduce(Float(0)) { $0 + expf($1 - m) }
            total += Double(logf(z) + m - row[row.startIndex + labels[i]])
            for j in 0..<c {
                let p = expf(row[row.startIndex + j] - m) / z
                grad[i * c + j] = (p - (j == labels[i] ? 1 : 0)) / Float(n)
            }
        }
        return (Float(total / Double(n)), try Tensor(shape: [n, c], scalars: grad))
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
        guard teacherLogits.shape == logits.shape else {
            throw LowBitError.invalidShape("teacher logits \(teacherLogits.shape) and student logits \(logits.shape) differ")
        }
        guard (0...1).contains(weight) else { throw LowBitError.invalidArgument("distillation weight must be in [0, 1], got \(weight)") }
        guard temperature > 0, temperature.isFinite else {
            throw LowBitError.invalidArgument("distillation temperature must be positive and finite, got \(temperature)")
        }
        try teacherLogits.checkFinite("teacher logits")
        let (hard, hardGradient) = try softmaxCrossEntropy(logits: logits, labels: labels)
        let (n, c) = (labels.count, logits.shape[1])
        var gradient = hardGradient.scalars
        var soft: Double = 0
        for i in 0..<n {
            let studentLog = logSoftmax(logits.scalars[(i * c)..<((i + 1) * c)], temperature: temperature)
            let teacher = logSoftmax(teacherLogits.scalars[(i * c)..<((i + 1) * c)], temperature: temperature).map(expf)
            for j in 0..<c {
                soft -= Double(teacher[j]) * Double(studentLog[j])
                // d/dz of T² · CE(teacher_T, softmax(z / T)) is T · (student_T − teacher_T).
                gradient[i * c + j] = (1 - weight) * gradient[i * c + j]
                    + weight * temperature * (expf(studentLog[j]) - teacher[j]) / Float(n)
            }
        }
        let loss = (1 - weight) * hard + weight * temperature * temperature * Float(soft / Double(n))
        return (loss, hard, try Tensor(shape: [n, c], scalars: gradient))
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
