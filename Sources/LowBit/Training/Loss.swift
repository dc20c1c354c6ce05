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
