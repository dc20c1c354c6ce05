/// How the rows of an activation matrix [batch · steps, features] map to sequences: row
/// b · steps + t is step t of sequence b, and only steps below `lengths[b]` are real.
public struct SequenceShape: Sendable, Equatable {
    /// Number of sequences.
    public let batch: Int
    /// Steps per sequence after padding: each sequence occupies `steps` consecutive rows.
    public let steps: Int
    /// Each sequence's number of real steps, in 1...steps.
    public let lengths: [Int]

    /// Creates a shape, or throws ``LowBitError/invalidShape(_:)`` unless `batch` and `steps`
    /// are positive and there is one length per sequence, each in 1...steps.
    public init(batch: Int, steps: Int, lengths: [Int]) throws {
        guard batch > 0, steps > 0 else { throw LowBitError.invalidShape("a batch needs at least one sequence and one step, got [\(batch), \(steps)]") }
        guard lengths.count == batch else { throw LowBitError.invalidShape("\(lengths.count) lengths for a batch of \(batch)") }
        if let bad = lengths.firstIndex(where: { $0 < 1 || $0 > steps }) {
            throw LowBitError.invalidShape("sequence \(bad) has length \(lengths[bad]); lengths must be in 1...\(steps)")
        }
        self.batch = batch
        self.steps = steps
        self.lengths = lengths
    }

    /// Rows of the activation matrix: batch · steps.
    public var rows: Int { batch * steps }

    /// The row of each sequence's last real step, b · steps + lengths[b] - 1: the encoder's
    /// output rows.
    public var lastSteps: [Int] { (0..<batch).map { $0 * steps + lengths[$0] - 1 } }
}
