/// How a forward or backward pass runs: on which backend, and in which mode.
public struct Execution: Sendable {
    public var backend: any Backend
    /// Training mode: dropout is active, layers keep what their backward pass needs, and
    /// quantized layers update their static-range statistics.
    public var training: Bool
    /// Calibration: eval-mode forward that still updates static-range statistics.
    public var calibrating: Bool

    public init(backend: any Backend, training: Bool, calibrating: Bool = false) {
        self.backend = backend
        self.training = training
        self.calibrating = calibrating
    }
}
