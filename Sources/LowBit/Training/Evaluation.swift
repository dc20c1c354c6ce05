import Foundation

/// Accuracy and confusion matrix of a classifier on a labelled set.
public struct Evaluation: Sendable, Equatable, Codable {
    /// The class names, which index both the rows and the columns of ``confusion``.
    public var classNames: [String]
    /// confusion[true][predicted].
    public var confusion: [[Int]]
    /// The mean cross-entropy of the predicted probabilities against the labels, when the
    /// evaluation had them (``PackedClassifier/evaluate(on:)`` does): a finer measure than
    /// accuracy for comparing settings.
    public var meanCrossEntropy: Double?

    /// Creates an evaluation from a confusion matrix (rows: true class, columns: predicted class)
    /// and, when it is known, the mean cross-entropy.
    public init(classNames: [String], confusion: [[Int]], meanCrossEntropy: Double? = nil) {
        self.classNames = classNames
        self.confusion = confusion
        self.meanCrossEntropy = meanCrossEntropy
    }
    /// The number of examples evaluated: the sum of the confusion matrix.
    public var count: Int { confusion.joined().reduce(0, +) }
    /// The number of examples classified correctly: the sum of the confusion matrix's diagonal.
    public var correct: Int { confusion.indices.reduce(0) { $0 + confusion[$1][$1] } }
    /// The share of examples classified correctly, from 0 to 1 (0 when nothing was evaluated).
    public var accuracy: Double { Double(correct) / Double(max(count, 1)) }
}
