import Foundation

/// One epoch of a run, as plotted and written to the metrics file.
public struct EpochRecord: Sendable, Equatable, Codable {
    public var epoch: Int
    public var step: Int
    public var trainLoss: Float
    public var trainAccuracy: Double
    /// On the evaluation split, when one is given.
    public var evaluationLoss: Float?
    public var evaluationAccuracy: Double?
    /// On the selection split (see ``CheckpointSelection``), when the run selects one.
    public var selectionLoss: Float?
    public var selectionAccuracy: Double?
    /// Training time so far, evaluation excluded.
    public var seconds: Double
}

/// Where a run is, reported after every step.
public struct TrainingProgress: Sendable {
    public var epoch: Int, epochs: Int
    public var step: Int, steps: Int
    public var loss: Float
    /// Of this epoch's steps so far.
    public var accuracy: Double
    public var stepsPerSecond: Double
    public var secondsRemaining: Double
}
