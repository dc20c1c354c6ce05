/// Checkpoint selection: held-out data a run is scored on after every epoch, and the file
/// that keeps the weights of the epoch with the lowest cross-entropy on it. A run that
/// selects ends with those weights instead of the last ones, which undoes overfitting late
/// in training (a form of early stopping that still spends the whole step budget, so a
/// resumed run stays exact).
///
/// The selection data must be held out of the training data, and not be the test split:
/// choosing weights on the data a model is then scored on would overstate its accuracy.
public struct CheckpointSelection: Sendable {
    /// The held-out series every epoch is scored on.
    public var data: TimeSeriesDataset
    /// Where the selected weights are kept (a checkpoint without optimizer state); a resumed
    /// run reads them back.
    public var path: String

    /// Creates a selection that scores every epoch on `data` and keeps the best epoch's weights
    /// in the file at `path`.
    public init(data: TimeSeriesDataset, path: String) {
        self.data = data
        self.path = path
    }
}
