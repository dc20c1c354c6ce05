import Foundation

/// A batch of sequences, padded to a common length: values [batch, steps, features].
public struct SequenceBatch: Sendable {
    /// The padded values [batch, steps, features]; steps past a sequence's length are padding.
    public let values: Tensor
    /// The batch's layout: batch size, padded steps and each sequence's real length.
    public let shape: SequenceShape

    /// Creates a batch from padded `values` [batch, steps, features] and each sequence's
    /// real length.
    ///
    /// Throws ``LowBitError/invalidShape(_:)`` unless `values` has rank 3 and every length
    /// is in 1...steps, and ``LowBitError/nonFinite(_:)`` for NaN or infinity anywhere in
    /// `values`, padding included.
    public init(values: Tensor, lengths: [Int]) throws {
        guard values.rank == 3 else {
            throw LowBitError.invalidShape("a sequence batch is [batch, steps, features], got shape \(values.shape)")
        }
        shape = try SequenceShape(batch: values.shape[0], steps: values.shape[1], lengths: lengths)
        try values.checkFinite("input sequences")
        self.values = values
    }

    /// The sequences `range` of this batch, as a batch of their own (same padded steps).
    public func sequences(_ range: Range<Int>) throws -> SequenceBatch {
        guard range.lowerBound >= 0, range.upperBound <= shape.batch, !range.isEmpty else {
            throw LowBitError.invalidShape("sequences \(range) of a batch of \(shape.batch)")
        }
        let per = shape.steps * features
        let slice = Array(values.scalars[(range.lowerBound * per)..<(range.upperBound * per)])
        return try SequenceBatch(values: Tensor(shape: [range.count, shape.steps, features], scalars: slice),
                                 lengths: Array(shape.lengths[range]))
    }

    /// Features per step (`values.shape[2]`); an encoder takes only its `embedDim`.
    public var features: Int { values.shape[2] }

    /// The batch's rows as one matrix [batch · steps, features].
    var rows: Tensor { try! Tensor(shape: [shape.rows, features], scalars: values.scalars) }
}
