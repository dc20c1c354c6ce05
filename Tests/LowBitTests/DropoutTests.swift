import LowBit
import Testing

/// Dropout's masks: what they hold, how they repeat, and that a worker's rows get the masks
/// of the same rows of the whole batch.
@Suite("Dropout")
struct DropoutTests {
    @Test("a mask holds 0 and 1 / (1 − rate) only, keeps about 1 − rate, repeats for a step, differs across steps; backward applies it",
          arguments: [Float(0.1), 0.2, 0.37, 0.5])
    func masks(rate: Float) throws {
        let x = try Tensor(shape: [64, 96], scalars: [Float](repeating: 1, count: 64 * 96))
        let exec = Execution(backend: ReferenceBackend(), training: true, step: 3)
        let y = Dropout(path: "block/ffn", rate: rate, seed: 7).forward(x, exec)
        let scale = 1 / (1 - rate)
        #expect(y.scalars.allSatisfy { $0 == 0 || $0 == scale })
        let kept = Double(y.scalars.filter { $0 != 0 }.count) / Double(x.count)
        // 6144 Bernoulli draws: the standard deviation of the kept share is at most 0.0064.
        #expect(abs(kept - Double(1 - rate)) < 0.03, "kept \(kept)")
        #expect(Dropout(path: "block/ffn", rate: rate, seed: 7).forward(x, exec) == y)
        var later = exec
        later.step = 4
        #expect(Dropout(path: "block/ffn", rate: rate, seed: 7).forward(x, later) != y)
        #expect(Dropout(path: "block/attn", rate: rate, seed: 7).forward(x, exec) != y)

        // A worker holding rows 40..<64 (rowOffset 40) draws the whole batch's masks for them.
        let tail = try Tensor(shape: [24, 96], scalars: Array(x.scalars[(40 * 96)...]))
        var worker = exec
        worker.rowOffset = 40
        #expect(Dropout(path: "block/ffn", rate: rate, seed: 7).forward(tail, worker).scalars == Array(y.scalars[(40 * 96)...]))

        let layer = Dropout(path: "block/ffn", rate: rate, seed: 7)
        _ = layer.forward(x, exec)
        let gradient = try Tensor(shape: [64, 96], scalars: (0..<(64 * 96)).map { Float($0 % 13) - 6 })
        #expect(layer.backward(gradient).scalars == zip(gradient.scalars, y.scalars).map { $0 * $1 })
        // Evaluation is the identity.
        #expect(Dropout(path: "block/ffn", rate: rate, seed: 7).forward(x, Execution(backend: ReferenceBackend(), training: false)) == x)
    }
}
