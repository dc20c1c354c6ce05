import Foundation

/// One epoch of a run, as plotted and written to the metrics file.
public struct EpochRecord: Sendable, Equatable, Codable {
    /// The epoch's number, from 1.
    public var epoch: Int
    /// The optimizer steps taken from the start of the run to the end of this epoch.
    public var step: Int
    /// The mean cross-entropy against the labels over the epoch's training batches, each taken
    /// in training mode (dropout, augmentation) before its update.
    public var trainLoss: Float
    /// The share of the epoch's training examples predicted correctly, each before its update.
    public var trainAccuracy: Double
    /// On the evaluation split, when one is given.
    public var evaluationLoss: Float?
    /// The accuracy on the evaluation split; nil when none is given or the run did not evaluate
    /// in this epoch (see the `evaluationInterval` of a run).
    public var evaluationAccuracy: Double?
    /// On the selection split (see ``CheckpointSelection``), when the run selects one.
    public var selectionLoss: Float?
    /// The accuracy on the selection split; nil when the run does not select.
    public var selectionAccuracy: Double?
    /// Training time so far, evaluation excluded.
    public var seconds: Double
}

/// Where a run is, reported after every step.
public struct TrainingProgress: Sendable {
    /// The current epoch, from 1, and the number of epochs in the run.
    public var epoch: Int, epochs: Int
    /// The steps taken since the start of the run, this one included, and the run's total.
    public var step: Int, steps: Int
    /// The mean training cross-entropy of this epoch's steps so far.
    public var loss: Float
    /// Of this epoch's steps so far.
    public var accuracy: Double
    /// Steps per wall-clock second since this session started (a resumed run counts from the
    /// resume), evaluation included.
    public var stepsPerSecond: Double
    /// The estimated seconds to the end of the run at ``stepsPerSecond``.
    public var secondsRemaining: Double
}
