/// How the rows of an activation matrix [batch · steps, features] map to sequences: row
/// b · steps + t is step t of sequence b, and only steps below `lengths[b]` are real.
public struct SequenceShape: Sendable, Equatable {
    public let batch: Int
    public let steps: Int
    public let lengths: [Int]

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

    public var rows: Int { batch * steps }
}
