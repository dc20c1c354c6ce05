import Testing
@testable import LowBit

@Suite("AdamW")
struct AdamWTests {
    /// AdamW written out in the order of operations the optimizer documents (the kernels'
    /// `adamw` contract), one value at a time.
    func expected(_ w: inout [Float], _ m: inout [Float], _ v: inout [Float], _ g: [Float], optimizer o: AdamW,
                  decays: Bool, step: Int) {
        let c1 = 1 - powf(o.beta1, Float(step)), c2 = 1 - powf(o.beta2, Float(step))
        let decay = decays ? o.weightDecay : 0
        for i in w.indices {
            m[i] = o.beta1 * m[i] + (1 - o.beta1) * g[i]
            v[i] = o.beta2 * v[i] + (1 - o.beta2) * g[i] * g[i]
            w[i] = w[i] - o.learningRate * ((m[i] / c1) / ((v[i] / c2).squareRoot() + o.epsilon) + decay * w[i])
        }
    }

    @Test("each update is the formula, bit for bit, for parameters that decay and that do not, on 1 or 2 threads")
    func updateIsTheFormula() {
        for threads in [1, 2] {
            var rng = SeededGenerator(seed: 7)
            let shapes = [(37, true), (5, false), (1, true), (4100, true)]
            let parameters = shapes.enumerated().map { i, s in
                Parameter(name: "p\(i)", shape: [s.0], value: (0..<s.0).map { _ in Float.random(in: -1...1, using: &rng) }, decays: s.1)
            }
            let optimizer = AdamW(learningRate: 3e-3, weightDecay: 0.05)
            var mine = parameters.map { ($0.value, [Float](repeating: 0, count: $0.count), [Float](repeating: 0, count: $0.count)) }
            for step in 1...3 {
                for p in parameters {
                    // zeros, tiny and large gradients next to ordinary ones
                    p.grad = (0..<p.count).map { j in
                        j % 5 == 1 ? 0 : Float.random(in: -1...1, using: &rng) * (j % 7 == 2 ? 1e-20 : j % 11 == 3 ? 1e4 : 1)
                    }
                }
                optimizer.update(parameters, threads: threads)
                for (i, p) in parameters.enumerated() {
                    var (w, m, v) = mine[i]
                    expected(&w, &m, &v, p.grad, optimizer: optimizer, decays: p.decays, step: step)
                    mine[i] = (w, m, v)
                    #expect(p.value.map(\.bitPattern) == mine[i].0.map(\.bitPattern), "\(p.name) step \(step) threads \(threads)")
                    #expect(optimizer.firstMoment[p.name]!.map(\.bitPattern) == mine[i].1.map(\.bitPattern))
                    #expect(optimizer.secondMoment[p.name]!.map(\.bitPattern) == mine[i].2.map(\.bitPattern))
                }
            }
            #expect(optimizer.step == 3)
        }
    }
}
