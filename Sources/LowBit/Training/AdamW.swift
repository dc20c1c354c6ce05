import LowBitKernels

/// AdamW (Loshchilov & Hutter): Adam with decoupled weight decay, applied only to the
/// parameters that decay (matrices). Keeps its moments by parameter name, so that they
/// can be saved and restored with a checkpoint.
public final class AdamW {
    /// The step size of the next update; ``ClassifierTraining`` sets it from its schedule before
    /// every step. 1e-3 by default.
    public var learningRate: Float
    /// The decay rate of the running mean of the gradients (the first moment); 0.9 by default.
    public var beta1: Float
    /// The decay rate of the running mean of the squared gradients (the second moment); 0.999
    /// by default.
    public var beta2: Float
    /// Added to the square root of the second moment so that a parameter with tiny gradients
    /// does not take huge steps; 1e-8 by default.
    public var epsilon: Float
    /// The decoupled weight decay: each update also subtracts `learningRate · weightDecay` times
    /// the value of every parameter that decays (weight matrices, not biases or layer norms).
    public var weightDecay: Float
    /// The number of updates taken so far. It drives the bias correction of the moments, and a
    /// training run uses it as its global step; checkpoints save and restore it.
    public internal(set) var step: Int = 0
    var firstMoment: [String: [Float]] = [:]
    var secondMoment: [String: [Float]] = [:]

    /// Creates an optimizer with no moments and no step taken. The defaults are Adam's usual
    /// ones, with a weight decay of 0.01.
    public init(learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8, weightDecay: Float = 0.01) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
    }

    /// Checks the hyperparameters (they are public and settable): a learning rate that is
    /// positive and finite, betas in [0, 1), a positive epsilon and a weight decay that is not
    /// negative. ``Trainer`` calls it before every update.
    ///
    /// - Throws: ``LowBitError/invalidArgument(_:)`` naming the first bad one.
    public func validate() throws {
        func bad(_ name: String, _ value: Float, _ range: String) -> LowBitError {
            .invalidArgument("AdamW \(name) must be \(range), got \(value)")
        }
        guard learningRate > 0, learningRate.isFinite else { throw bad("learning rate", learningRate, "positive and finite") }
        guard beta1 >= 0, beta1 < 1 else { throw bad("beta1", beta1, "in [0, 1)") }
        guard beta2 >= 0, beta2 < 1 else { throw bad("beta2", beta2, "in [0, 1)") }
        guard epsilon > 0, epsilon.isFinite else { throw bad("epsilon", epsilon, "positive and finite") }
        guard weightDecay >= 0, weightDecay.isFinite else { throw bad("weight decay", weightDecay, "finite and not negative") }
    }

    /// One update of every parameter from its accumulated gradient.
    public func update(_ parameters: [Parameter]) { update(parameters, threads: 1) }

    /// One update of every parameter, the parameters shared out over `threads` threads (the
    /// update is element by element, so the result is the same on any number of them).
    func update(_ parameters: [Parameter], threads: Int) {
        step += 1
        let c1 = 1 - powf(beta1, Float(step)), c2 = 1 - powf(beta2, Float(step))
        // Taken out of the dictionaries so that they are updated in place, not copied.
        var moments = parameters.map { p in
            (firstMoment.removeValue(forKey: p.name) ?? [Float](repeating: 0, count: p.count),
             secondMoment.removeValue(forKey: p.name) ?? [Float](repeating: 0, count: p.count))
        }
        let (beta1, beta2, learningRate, epsilon, weightDecay) = (beta1, beta2, learningRate, epsilon, weightDecay)
        moments.withUnsafeMutableBufferPointer { moments in
            nonisolated(unsafe) let moments = moments
            forEachShare(of: parameters, threads: threads) { i in
                let p = parameters[i]
                let decay = p.decays ? weightDecay : 0
                // In place: `value`'s observer only counts the change, so no copy is made.
                p.grad.withUnsafeBufferPointer { grad in
                    moments[i].0.withUnsafeMutableBufferPointer { m in
                        moments[i].1.withUnsafeMutableBufferPointer { v in
                            p.value.withUnsafeMutableBufferPointer { value in
                                adamWStep(value: value, firstMoment: m, secondMoment: v, gradient: grad,
                                          beta1: beta1, beta2: beta2, learningRate: learningRate, epsilon: epsilon,
                                          decay: decay, c1: c1, c2: c2)
                            }
                        }
                    }
                }
            }
        }
        for (p, (m, v)) in zip(parameters, moments) {
            firstMoment[p.name] = m
            secondMoment[p.name] = v
        }
    }
}

/// One parameter's update, by the C kernels' `adamw` (an AVX-512 or AVX2 loop where the CPU
/// has one): Swift's `SIMD8.squareRoot()` ran lane by lane, which made the update of a
/// design-size model 9 ms of a step. Every ISA gives the same bits (the kernel's contract).
private func adamWStep(value: UnsafeMutableBufferPointer<Float>, firstMoment m: UnsafeMutableBufferPointer<Float>,
                       secondMoment v: UnsafeMutableBufferPointer<Float>, gradient grad: UnsafeBufferPointer<Float>,
                       beta1: Float, beta2: Float, learningRate: Float, epsilon: Float, decay: Float, c1: Float, c2: Float) {
    guard grad.count > 0, let w = value.baseAddress, let mp = m.baseAddress, let vp = v.baseAddress, let g = grad.baseAddress else { return }
    var h = lowbit_adamw_step(beta1: beta1, beta2: beta2, learning_rate: learningRate, epsilon: epsilon, decay: decay, c1: c1, c2: c2)
    let status = withUnsafePointer(to: optimizerContext) { lowbit_adamw_update($0, w, mp, vp, g, Int64(grad.count), &h) }
    precondition(status == LOWBIT_OK, "lowbit_adamw_update refused \(grad.count) parameters")
}

/// The context of the optimizer's kernel: the fastest ISA, one thread (the callers share the
/// parameters out over their own threads).
nonisolated(unsafe) private let optimizerContext: lowbit_context = {
    var ctx = lowbit_context()
    if lowbit_context_init(&ctx, lowbit_isa_best(), 1) != LOWBIT_OK { _ = lowbit_context_init(&ctx, LOWBIT_ISA_SCALAR, 1) }
    return ctx
}()

/// Scales all gradients down so that their global L2 norm is at most `maxNorm`; returns the norm before.
@discardableResult
public func clipGradients(_ parameters: [Parameter], maxNorm: Float) -> Float {
    // Eight running sums: one would wait on each addition before the next (a serial step of
    // every data-parallel rank).
    var sums = SIMD8<Double>()
    for p in parameters {
        p.grad.withUnsafeBufferPointer { g in
            var i = 0
            while i + 8 <= g.count {
                let x = SIMD8<Float>(g[i..<(i + 8)])
                sums += SIMD8<Double>(x * x)
                i += 8
            }
            while i < g.count { sums[0] += Double(g[i] * g[i]); i += 1 }
        }
    }
    let norm = Float(sums.sum().squareRoot())
    if norm > maxNorm && norm > 0 {
        let s = maxNorm / norm
        for p in parameters { p.grad.withUnsafeMutableBufferPointer { g in for i in g.indices { g[i] *= s } } }
    }
    return norm
}

func powf(_ x: Float, _ y: Float) -> Float { Float(Foundation.pow(Double(x), Double(y))) }

import Foundation
