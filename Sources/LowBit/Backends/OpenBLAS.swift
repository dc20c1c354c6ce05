import COpenBLAS
import LowBitKernels
import Foundation

/// The OpenBLAS calls LowBit uses, in one place.
///
/// OpenBLAS's thread count is one process-wide setting, and its sgemm sums in another order
/// at another thread count (its threads split the output, and its edge tiles sum differently).
/// So every call here names the thread count its backend was made with, and ``ThreadGate``
/// makes that the count in effect for the whole call: a backend's float products then do not
/// depend on what other backends in the process were made with or are running.
enum OpenBLAS {
    /// Sets OpenBLAS's process-wide thread count for the calls that name none (the benchmarks
    /// that time OpenBLAS alone), once the gated calls running now are done.
    static func setThreads(_ n: Int) { ThreadGate.shared.set(n) }

    static var configuration: String {
        _ = coreChoice
        return String(cString: openblas_get_config())
    }

    /// The kernels OpenBLAS runs ("SkylakeX", "Haswell", ...), after ``coreChoice``.
    static var coreName: String {
        _ = coreChoice
        return String(cString: openblas_get_corename())
    }

    /// The core LowBit selected for OpenBLAS, or nil where OpenBLAS's own choice stands.
    ///
    /// A DYNAMIC_ARCH OpenBLAS picks its kernels by CPU model when it loads, and a CPU newer
    /// than the library gets its plainest x86-64 kernels: Debian 12's 0.3.21 takes an Emerald
    /// Rapids Xeon (CPUID model 207) for a Prescott (SSE3), whose sgemm ran at a quarter of the
    /// speed, so that float training took 1.7 s a step instead of 0.3. When OpenBLAS chose
    /// Prescott on a CPU with AVX-512 or AVX2 + FMA, and the user named no core
    /// (`OPENBLAS_CORETYPE`, which OpenBLAS honours at load), this selects the newest kernels
    /// the CPU runs, before the first call, through OpenBLAS's own dynamic-core entry points
    /// (the way it reads `OPENBLAS_CORETYPE`). Runs once: the thread gate, which every gated
    /// call passes, runs it when it is made, and the ungated entry points call it first.
    static let coreChoice: String? = {
        guard getenv("OPENBLAS_CORETYPE") == nil, String(cString: openblas_get_corename()).lowercased() == "prescott"
        else { return nil }
        let core: String
        if lowbit_isa_supported(LOWBIT_ISA_AVX512) != 0 { core = "SkylakeX" }
        else if lowbit_isa_supported(LOWBIT_ISA_AVX2) != 0 { core = "Haswell" }
        else { return nil }
        typealias Entry = @convention(c) () -> Void
        guard let quit = dlsym(nil, "gotoblas_dynamic_quit"), let initialize = dlsym(nil, "gotoblas_dynamic_init")
        else { return nil }
        setenv("OPENBLAS_CORETYPE", core, 1)
        unsafeBitCast(quit, to: Entry.self)()
        unsafeBitCast(initialize, to: Entry.self)()
        unsetenv("OPENBLAS_CORETYPE")
        return String(cString: openblas_get_corename()).lowercased() == core.lowercased() ? core : nil
    }()

    /// Lets OpenBLAS calls with the same thread count run together (data-parallel workers each
    /// call sgemm on one thread) and makes a call with another count wait until they are done,
    /// then switches the count. A lock per call costs nothing beside an sgemm.
    final class ThreadGate: @unchecked Sendable {
        static let shared = ThreadGate()
        private let condition = NSCondition()
        private init() { _ = OpenBLAS.coreChoice }
        private var current = -1
        private var running = 0

        func run<R>(threads: Int, _ body: () throws -> R) rethrows -> R {
            condition.lock()
            while running > 0 && current != threads { condition.wait() }
            if current != threads { switchTo(threads) }
            running += 1
            condition.unlock()
            defer {
                condition.lock()
                running -= 1
                if running == 0 { condition.broadcast() }
                condition.unlock()
            }
            return try body()
        }

        func set(_ threads: Int) {
            condition.lock()
            while running > 0 { condition.wait() }
            switchTo(threads)
            condition.unlock()
        }

        private func switchTo(_ threads: Int) {
            openblas_set_num_threads(Int32(threads))
            current = threads
        }
    }

    /// C[m, n] = op(A) op(B) (+ C when accumulate), row-major, on `threads` OpenBLAS threads.
    static func sgemm(_ a: [Float], _ b: [Float], m: Int, n: Int, k: Int, lda: Int, ldb: Int,
                      transposeA: Bool, transposeB: Bool, into c: inout [Float], accumulate: Bool = false, threads: Int) {
        c.withUnsafeMutableBufferPointer { cp in
            ThreadGate.shared.run(threads: threads) {
                cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                            Int32(m), Int32(n), Int32(k), 1, a, Int32(lda), b, Int32(ldb), accumulate ? 1 : 0,
                            cp.baseAddress, Int32(n))
            }
        }
    }

    /// op(a) · op(b) for matrices already checked by ``Backend/checkMatmul``.
    static func matmul(_ a: Tensor, _ b: Tensor, m: Int, n: Int, k: Int, transposeA: Bool, transposeB: Bool,
                       threads: Int) throws -> Tensor {
        // sgemm with beta = 0 writes every element of C without reading it
        var c = kernelOutput(Float.self, m * n)
        sgemm(a.scalars, b.scalars, m: m, n: n, k: k, lda: a.shape[1], ldb: b.shape[1],
              transposeA: transposeA, transposeB: transposeB, into: &c, threads: threads)
        return try Tensor(shape: [m, n], scalars: c)
    }

    /// c += op(a) · op(b) for matrices already checked by ``Backend/checkMatmul``, `c` holding m · n.
    static func matmul(_ a: Tensor, _ b: Tensor, m: Int, n: Int, k: Int, transposeA: Bool, transposeB: Bool,
                       threads: Int, addingTo c: inout [Float]) {
        precondition(c.count == m * n, "an accumulator of \(c.count) values for [\(m), \(n)]")
        sgemm(a.scalars, b.scalars, m: m, n: n, k: k, lda: a.shape[1], ldb: b.shape[1],
              transposeA: transposeA, transposeB: transposeB, into: &c, accumulate: true, threads: threads)
    }

    /// The same in double: exact for int8 products (sums stay far below 2^53).
    static func dgemm(_ a: [Double], _ b: [Double], m: Int, n: Int, k: Int, lda: Int, ldb: Int,
                      transposeA: Bool, transposeB: Bool, threads: Int) -> [Double] {
        var c = [Double](repeating: 0, count: m * n)
        c.withUnsafeMutableBufferPointer { cp in
            ThreadGate.shared.run(threads: threads) {
                cblas_dgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                            Int32(m), Int32(n), Int32(k), 1, a, Int32(lda), b, Int32(ldb), 0, cp.baseAddress, Int32(n))
            }
        }
        return c
    }
}

/// The float baseline the kernels are measured against: y[n, m] = x[n, k] · W[m, k]ᵀ with
/// OpenBLAS (sgemv for one token, sgemm otherwise).
public enum OpenBLASLinear {
    /// Sets OpenBLAS's thread count: a process-wide setting, shared with every backend that
    /// calls OpenBLAS.
    public static func setThreads(_ n: Int) { OpenBLAS.setThreads(n) }

    /// OpenBLAS's own description of its build, as `openblas_get_config()` returns it.
    public static var configuration: String { OpenBLAS.configuration }

    /// The kernels OpenBLAS runs on this CPU (`openblas_get_corename()`), and whether LowBit
    /// chose them because OpenBLAS took the CPU for an old one (see the troubleshooting guide).
    public static var core: (name: String, selectedByLowBit: Bool) { (OpenBLAS.coreName, OpenBLAS.coreChoice != nil) }

    /// Computes y[n, m] = x[n, k] · W[m, k]ᵀ, all row-major, with sgemv when `n` is 1 and
    /// sgemm otherwise. Nothing is checked: `x`, `weights` and `y` must hold n·k, m·k and n·m
    /// floats.
    public static func run(x: UnsafePointer<Float>, weights: UnsafePointer<Float>, tokens n: Int, outputs m: Int,
                           inputs k: Int, into y: UnsafeMutablePointer<Float>) {
        _ = OpenBLAS.coreChoice
        if n == 1 {
            cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(m), Int32(k), 1, weights, Int32(k), x, 1, 0, y, 1)
        } else {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(m), Int32(k), 1, x, Int32(k),
                        weights, Int32(k), 0, y, Int32(m))
        }
    }

    /// Σ|x| by OpenBLAS's sasum: a plain vector read of `x`, the read-bandwidth baseline
    /// the quantize kernels are measured against.
    public static func sumOfMagnitudes(_ x: UnsafeBufferPointer<Float>) -> Float {
        _ = OpenBLAS.coreChoice
        return cblas_sasum(Int32(x.count), x.baseAddress, 1)
    }
}

/// A backend whose float products can add into a buffer that holds a sum already (sgemm with
/// beta = 1): a weight gradient then goes straight into the parameter's gradient, without a
/// product array and a second pass to add it.
protocol AccumulatingMatmul {
    /// c += op(a) · op(b); `c` holds the product's [m, n] values.
    ///
    /// - Throws: what ``Backend/matmul(_:_:transposeA:transposeB:)`` throws, and
    ///   ``LowBitError/invalidShape(_:)`` if `c` does not hold m · n values.
    func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool, transposeB: Bool, addingTo c: inout [Float]) throws
    /// The same for operands known to be finite: shapes checked, values not scanned.
    func matmul(finite a: Tensor, _ b: Tensor, transposeA: Bool, transposeB: Bool, addingTo c: inout [Float]) throws
    /// ``Backend/matmul(_:_:transposeA:transposeB:)`` for operands known to be finite.
    func matmul(finite a: Tensor, _ b: Tensor, transposeA: Bool, transposeB: Bool) throws -> Tensor
    /// The OpenBLAS threads of each product.
    var threads: Int { get }
}

extension AccumulatingMatmul where Self: Backend {
    func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool, transposeB: Bool, addingTo c: inout [Float]) throws {
        _ = try checkMatmul(a, b, transposeA: transposeA, transposeB: transposeB)
        try matmul(finite: a, b, transposeA: transposeA, transposeB: transposeB, addingTo: &c)
    }

    /// ``matmul(_:_:transposeA:transposeB:addingTo:)`` of operands known to be finite: the
    /// shapes are checked, the values not scanned. For a backward pass, whose operands were
    /// checked by its forward (inputs, weights), are finite by construction (dequantized
    /// values) or are checked once by the caller (the output gradient): each scan of them
    /// was a pass over megabytes for nothing.
    func matmul(finite a: Tensor, _ b: Tensor, transposeA: Bool, transposeB: Bool, addingTo c: inout [Float]) throws {
        let (m, n, k) = try checkMatmulShapes(a, b, transposeA: transposeA, transposeB: transposeB)
        guard c.count == m * n else { throw LowBitError.invalidShape("an accumulator of \(c.count) values for [\(m), \(n)]") }
        OpenBLAS.matmul(a, b, m: m, n: n, k: k, transposeA: transposeA, transposeB: transposeB, threads: threads, addingTo: &c)
    }

    /// ``Backend/matmul(_:_:transposeA:transposeB:)`` of operands known to be finite (see
    /// ``matmul(finite:_:transposeA:transposeB:addingTo:)``): OpenBLAS's product, as that
    /// method computes it.
    func matmul(finite a: Tensor, _ b: Tensor, transposeA: Bool, transposeB: Bool) throws -> Tensor {
        let (m, n, k) = try checkMatmulShapes(a, b, transposeA: transposeA, transposeB: transposeB)
        return try OpenBLAS.matmul(a, b, m: m, n: n, k: k, transposeA: transposeA, transposeB: transposeB, threads: threads)
    }
}
