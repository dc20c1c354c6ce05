import Foundation

/// Accuracy and confusion matrix of a classifier on a labelled set.
public struct Evaluation: Sendable, Equatable, Codable {
    public var classNames: [String]
    /// confusion[true][predicted].
    public var confusion: [[Int]]
    /// The mean cross-entropy of the predicted probabilities against the labels, when the
    /// evaluation had them (``PackedClassifier/evaluate(on:)`` does): a finer measure than
    /// accuracy for comparing settings.
    public var meanCrossEntropy: Double?

    public init(classNames: [String], confusion: [[Int]], meanCrossEntropy: Double? = nil) {
        self.classNames = classNames
        self.confusion = confusion
        self.meanCrossEntropy = meanCrossEntropy
    }
    public var count: Int { confusion.joined().reduce(0, +) }
    public var correct: Int { confusion.indices.reduce(0) { $0 + confusion[$1][$1] } }
    public var accuracy: Double { Double(correct) / Double(max(count, 1)) }
}
