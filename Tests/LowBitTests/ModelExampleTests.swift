import Foundation
import LowBit
import Testing

/// The model article's Swift example (LowBit.docc/TheModel.md) (the model, trained step by step), compiled and run;
/// DocumentationExampleTests checks that the document shows this very code.
@Test("model article example: build, train a few steps, save, load, evaluate")
func modelExample() throws {
    let path = temporaryPath("model-example.safetensors")
    // --- program begins ---
    // path: where the checkpoint goes
    let backend = try RuntimeConfiguration.fromEnvironment().makeBackend()   // LOWBIT_BACKEND etc.
    let configuration = EncoderConfiguration(inputWidth: 4, width: 32, headCount: 2, layerCount: 2,
                                       weightMode: .ternary, dropout: 0.1, seed: 42)
    let model = try SequenceClassifier(configuration, classes: 3)
    let trainer = Trainer(model: model, backend: backend, optimizer: AdamW(learningRate: 3e-3))

    // values [batch, steps, features], padded; lengths give each sequence's real steps
    let batch = try SequenceBatch(values: Tensor(shape: [2, 5, 4]) { Float($0 % 7) / 7 }, lengths: [5, 3])
    let labels = [0, 2]
    for _ in 0..<5 { try trainer.step(batch, labels: labels) }

    try Checkpoint.save(model, optimizer: trainer.optimizer, to: path)
    let (restored, _, _) = try Checkpoint.load(from: path)
    let predictions = try restored.predict(batch, backend: backend)

    let packed = try PackedClassifier(restored, backend: KernelsBackend())   // ternary weights, packed
    print(predictions, try packed.predict(batch), packed.weightBytes)
    // --- program ends ---
    #expect(predictions.count == 2)
    #expect(try packed.predict(batch) == restored.predict(batch, backend: KernelsBackend()))
}

