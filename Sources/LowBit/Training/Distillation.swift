import Foundation

/// How a quantized run learns from the float model (knowledge distillation): see
/// ``Loss/distillation(logits:labels:teacherLogits:weight:temperature:)``.
public struct Distillation: Sendable, Equatable, Codable {
    /// The share of the teacher's soft predictions in the loss; the labels get the rest.
    public var weight: Float
    /// Softens both distributions, so that the teacher's near misses carry weight.
    public var temperature: Float

    /// Creates a distillation setting. By default the teacher's predictions and the labels share
    /// the loss equally, at a temperature of 2.
    public init(weight: Float = 0.5, temperature: Float = 2) {
        self.weight = weight
        self.temperature = temperature
    }

    /// Checks that the setting can train. A weight of 0 is refused: a run without a teacher has
    /// no ``TrainingSettings/distillation`` at all.
    ///
    /// - Throws: ``LowBitError/invalidArgument(_:)`` when `weight` is outside (0, 1] or
    ///   `temperature` is not positive and finite.
    public func validate() throws {
        guard weight > 0, weight <= 1 else { throw LowBitError.invalidArgument("distillation weight must be in (0, 1], got \(weight)") }
        guard temperature > 0, temperature.isFinite else {
            throw LowBitError.invalidArgument("distillation temperature must be positive and finite, got \(temperature)")
        }
    }
}
