/// How a forward or backward pass runs: on which backend, and in which mode.
public struct Execution: Sendable {
    /// The backend that runs every matrix product and quantization of the pass.
    public var backend: any Backend
    /// Training mode: dropout is active, layers keep what their backward pass needs, and
    /// quantized layers update their static-range statistics.
    public var training: Bool
    /// Calibration: eval-mode forward that still updates static-range statistics.
    public var calibrating: Bool
    /// The optimisation step: dropout masks are a function of (seed, layer, step), so a run
    /// resumed from a checkpoint draws the same masks as an uninterrupted one.
    public var step: Int
    /// The first row of this pass's batch within a larger batch whose sequences are split over
    /// workers (0 otherwise): dropout draws the masks of those rows, as a pass over the whole
    /// batch would.
    public var rowOffset: Int
    /// The padded sequences the rows of this pass belong to, when the encoder runs it: the
    /// static-range statistics then skip padding rows, which hold no real step.
    var sequences: SequenceShape?
    /// The rows of the pass's batch that this pass's rows are, when it runs a few of them only
    /// (the encoder's last block past its keys and values: each sequence's last real step);
    /// nil: all of them, in order. Dropout draws those rows' masks.
    var rowIndices: [Int]?

    /// Creates an execution context. `calibrating` matters only when `training` is false, and
    /// `step` and `rowOffset` only for dropout masks.
    public init(backend: any Backend, training: Bool, calibrating: Bool = false, step: Int = 0, rowOffset: Int = 0) {
        self.backend = backend
        self.training = training
        self.calibrating = calibrating
        self.step = step
        self.rowOffset = rowOffset
    }

    /// This pass for the rows `rows` of its batch alone, one each: the rows a layer past the
    /// last block's attention sees.
    func keeping(rows: [Int]) -> Execution {
        var kept = self
        kept.rowIndices = rows
        kept.sequences = nil
        return kept
    }
}
