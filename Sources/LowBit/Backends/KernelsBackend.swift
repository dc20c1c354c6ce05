import LowBitKernels

/// LowBit's C kernels: packed low-bit weights, int8 activations, int32 accumulation and a
/// fused dequantize, on the ISA and thread count given. Float matmuls (not low-bit) go
/// to OpenBLAS.
public struct KernelsBackend: Backend {
    /// Always ``BackendKind/kernels``.
    public var kind: BackendKind { .kernels }
    /// "kernels/ISA/THREADS", such as "kernels/avx512vnni/2": packed weights are reused only
    /// by a kernels backend with the same ISA and thread count.
    public var identity: String { "kernels/\(isa.rawValue)/\(threads)" }
    /// The instruction set whose kernels run (it may leave a kernel to a lower one; see
    /// ``KernelsBackend/kernelISAs``).
    public let isa: ISA
    /// The threads each kernel call uses, and each of its OpenBLAS calls (float matmuls).
    public let threads: Int
    /// Plain data; its table pointer refers to immutable tables built once per process.
    private let box: ContextBox
    var context: lowbit_context { box.value }

    /// Creates a backend that runs `isa` on `threads` threads (by default the fastest ISA
    /// and one thread per online CPU). Its float matmuls run OpenBLAS on `threads` threads too:
    /// OpenBLAS's thread count is process-wide, so each call makes it `threads` for its
    /// duration (calls with another count wait), and this backend's results do not depend on
    /// the other backends in the process.
    ///
    /// It also makes glibc's malloc keep freed memory in the process (blocks up to 32 MB, up
    /// to 256 MB in all) rather than give it back to the OS on every free: a model's
    /// per-pass buffers are megabytes each, and faulting them back in as zeroed pages took a
    /// third of a forward pass at the design's size. The peak memory is unchanged; the
    /// process just does not shrink after it.
    ///
    /// - Throws: ``LowBitError/invalidArgument(_:)`` if `threads` is not from 1 to 1024;
    ///   ``LowBitError/unsupportedISA(_:)`` if this build or this CPU cannot run `isa`.
    public init(isa: ISA = .best, threads: Int = RuntimeConfiguration.cpuCount) throws {
        guard (1...1024).contains(threads) else { throw LowBitError.invalidArgument("thread count must be from 1 to 1024, got \(threads)") }
        var ctx = lowbit_context()
        let status = lowbit_context_init(&ctx, isa.raw, Int32(threads))
        guard status == LOWBIT_OK else {
            throw LowBitError.unsupportedISA("\(isa.rawValue): \(String(cString: lowbit_status_string(status)))")
        }
        self.isa = isa
        self.threads = threads
        self.box = ContextBox(value: ctx)
        _ = lowbit_retain_freed_memory()
    }

    /// The ISA whose code runs each kernel (an ISA may leave a kernel to a lower one).
    public var kernelISAs: [(kernel: String, isa: ISA)] {
        withUnsafePointer(to: context) { ctx in
            (0..<lowbit_kernel_count()).map { (String(cString: lowbit_kernel_name($0)), ISA(lowbit_kernel_isa(ctx, $0))) }
        }
    }

    func check(_ status: lowbit_status, _ what: String) throws {
        switch status {
        case LOWBIT_OK: return
        case LOWBIT_ERR_NONFINITE: throw LowBitError.nonFinite("\(what) holds NaN or infinity (or, to average, magnitudes near Float.greatestFiniteMagnitude)")
        case LOWBIT_ERR_SHAPE: throw LowBitError.invalidShape("\(what): shape refused by the kernels")
        case LOWBIT_ERR_UNSUPPORTED_ISA: throw LowBitError.unsupportedISA(what)
        default: throw LowBitError.invalidArgument("\(what): \(String(cString: lowbit_status_string(status)))")
        }
    }

    /// Float product op(a) · op(b) by OpenBLAS sgemm: float matmuls are not low-bit, so the
    /// kernels leave them to BLAS.
    ///
    /// - Throws: ``LowBitError/invalidShape(_:)`` for a non-matrix, empty or mismatched operand;
    ///   ``LowBitError/nonFinite(_:)`` for NaN or infinity in either operand.
    public func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool, transposeB: Bool) throws -> Tensor {
        let (m, n, k) = try checkMatmul(a, b, transposeA: transposeA, transposeB: transposeB)
        return try OpenBLAS.matmul(a, b, m: m, n: n, k: k, transposeA: transposeA, transposeB: transposeB,
                                   threads: threads)
    }

    /// Quantizes with the C kernels of ``KernelsBackend/isa``, returning the same values and
    /// scale bits as ``ReferenceQuantizer``.
    ///
    /// - Throws: ``LowBitError/invalidShape(_:)`` unless `w` is a non-empty matrix;
    ///   ``LowBitError/invalidArgument(_:)`` for a group size that cannot be packed;
    ///   ``LowBitError/nonFinite(_:)`` for NaN or infinity or, in binary and ternary, magnitudes so
    ///   large that a partial sum overflows.
    public func quantize(weights w: Tensor, mode: QuantizationMode, granularity: Granularity, bound: ScaleBound) throws -> QuantizedWeights {
        let (rows, cols) = try w.matrixShape("weights")
        guard rows > 0, cols > 0 else { throw LowBitError.invalidShape("weights must be non-empty, got \(w.shape)") }
        try ReferenceQuantizer.validate(granularity, mode: mode, cols: cols)
        let group = Int64(granularity.groupLength(cols: cols))
        var q = kernelOutput(Int8.self, rows * cols)
        var scales = kernelOutput(Float.self, granularity.scaleCount(rows: rows, cols: cols))
        let status = withUnsafePointer(to: context) { ctx in
            switch mode {
            case .binary: lowbit_quantize_sign(ctx, w.scalars, Int64(rows), Int64(cols), group, &q, &scales)
            case .ternary: lowbit_quantize_ternary(ctx, w.scalars, Int64(rows), Int64(cols), group, &q, &scales)
            case .int4, .int8:
                lowbit_quantize_absmax(ctx, w.scalars, Int64(rows), Int64(cols), group, Int32(mode.qmax),
                                       bound.value(qmax: mode.qmax), &q, &scales)
            }
        }
        try check(status, "weights")
        return try QuantizedWeights(mode: mode, rows: rows, cols: cols, granularity: granularity, values: q, scales: scales)
    }

    /// Quantizes activations [tokens, cols] to int8 per token with the C kernels, rows padded
    /// with zeros to K rounded up to a multiple of 32 (the stride the packed matmul reads).
    ///
    /// - Throws: ``LowBitError/invalidShape(_:)`` unless `x` is a non-empty matrix;
    ///   ``LowBitError/nonFinite(_:)`` for NaN or infinity.
    public func quantize(activations x: Tensor) throws -> QuantizedActivations {
        let (n, k) = try x.matrixShape("activations")
        guard n > 0, k > 0 else { throw LowBitError.invalidShape("activations must be non-empty, got \(x.shape)") }
        let stride = ReferenceQuantizer.paddedLength(k)
        var q = kernelOutput(Int8.self, n * stride)
        var scales = kernelOutput(Float.self, n)
        let status = withUnsafePointer(to: context) { ctx in
            lowbit_quantize_activations(ctx, x.scalars, Int64(n), Int64(k), &q, Int64(stride), &scales)
        }
        try check(status, "activations")
        return QuantizedActivations(quantized: n, cols: k, stride: stride, values: q, scales: scales)
    }

    /// max |x| per row by the C kernels (threaded).
    ///
    /// - Throws: ``LowBitError/invalidShape(_:)`` unless `x` is a non-empty matrix;
    ///   ``LowBitError/nonFinite(_:)`` for NaN or infinity.
    public func rowAbsmax(_ x: Tensor) throws -> [Float] {
        let (n, k) = try x.matrixShape("rows")
        guard n > 0, k > 0 else { throw LowBitError.invalidShape("rows must be non-empty, got \(x.shape)") }
        var out = kernelOutput(Float.self, n)
        let status = withUnsafePointer(to: context) { lowbit_absmax_rows($0, x.scalars, Int64(n), Int64(k), &out) }
        try check(status, "rows")
        return out
    }

    /// Stochastic rounding per row by the C kernels: the reference's values and scales, bit for bit.
    ///
    /// - Throws: ``LowBitError/invalidShape(_:)`` unless `x` is a non-empty matrix;
    ///   ``LowBitError/nonFinite(_:)`` for NaN or infinity.
    public func quantizeStochastic(rows x: Tensor, seed: UInt64) throws -> QuantizedActivations {
        let (n, k) = try x.matrixShape("gradient")
        guard n > 0, k > 0 else { throw LowBitError.invalidShape("gradient must be non-empty, got \(x.shape)") }
        let stride = ReferenceQuantizer.paddedLength(k)
        var q = kernelOutput(Int8.self, n * stride)
        var scales = kernelOutput(Float.self, n)
        let status = withUnsafePointer(to: context) { ctx in
            lowbit_quantize_stochastic(ctx, x.scalars, Int64(n), Int64(k), seed, &q, Int64(stride), &scales)
        }
        try check(status, "gradient")
        return QuantizedActivations(quantized: n, cols: k, stride: stride, values: q, scales: scales)
    }

    /// Packs the values once into the layout of `lowbit.h` (rows in panels of 16, K in 64-byte
    /// chunks of codes), keeping the scales per row or per group.
    ///
    /// - Throws: ``LowBitError/invalidArgument(_:)`` if a value is not a code of the mode (for
    ///   binary, anything but ±1; for int4, anything outside [-8, 7]).
    public func prepare(_ weights: QuantizedWeights) throws -> PreparedWeights {
        let packed = PackedStorage(weights)
        let status = weights.values.withUnsafeBufferPointer { v in
            packed.bytes.withUnsafeMutableBufferPointer { out in
                lowbit_pack(weights.mode.format, v.baseAddress, Int64(weights.rows), Int64(weights.cols), out.baseAddress)
            }
        }
        try check(status, "weight values out of the \(weights.mode.rawValue) range")
        return PreparedWeights(quantized: weights, storage: packed, backend: kind)
    }

    /// The packed product: int8 activations times low-bit codes with exact int32 sums per scale
    /// group, dequantized and added to `bias` in the same pass.
    ///
    /// - Throws: ``LowBitError/invalidArgument(_:)`` for weights another backend prepared or a -128
    ///   in `x`; ``LowBitError/invalidShape(_:)`` for mismatched columns, K over 65,536, a bias not
    ///   [rows] or a group size the kernels cannot run; ``LowBitError/nonFinite(_:)`` for NaN or
    ///   infinity in a scale or in `bias`.
    public func linear(_ x: QuantizedActivations, _ weights: PreparedWeights, bias: Tensor?) throws -> Tensor {
        try linear(x, weights, bias: bias, epilogue: .none)   // LinearEpilogue.swift
    }

    /// Int8 product by the C kernels, with exact int32 sums, row-major [rows of op(a), cols of
    /// op(b)].
    ///
    /// - Throws: ``LowBitError/invalidShape(_:)`` for empty operands, differing inner dimensions or
    ///   K over 65,536; ``LowBitError/invalidArgument(_:)`` for a -128 in `a` (`b` takes the full
    ///   int8 range).
    public func gemmInt8(_ a: Int8Matrix, _ b: Int8Matrix, transposeA: Bool, transposeB: Bool) throws -> [Int32] {
        let (m, n, k) = try checkGemm(a, b, transposeA: transposeA, transposeB: transposeB)
        var c = kernelOutput(Int32.self, m * n)
        var workspace = kernelOutput(UInt8.self, lowbit_gemm_s8_workspace_size(Int64(m), Int64(n), Int64(k)))
        let status = withUnsafePointer(to: context) { ctx in
            lowbit_gemm_s8(ctx, transposeA ? 1 : 0, transposeB ? 1 : 0, Int64(m), Int64(n), Int64(k), a.values,
                           Int64(a.stride), b.values, Int64(b.stride), &c, Int64(n), &workspace)
        }
        try check(status, "int8 GEMM")
        return c
    }
}

/// An array for a C kernel to fill: its `count` elements are not zeroed first (the kernels
/// behind every use write each element, padding included, before anything reads it; zeroing
/// the megabytes of a forward pass's outputs cost more than some of the kernels).
@inline(__always)
func kernelOutput<T: BitwiseCopyable>(_ type: T.Type, _ count: Int) -> [T] {
    // An empty array is the runtime's one shared empty storage: setting its count, even to
    // 0, is a write to a global that other threads read.
    guard count > 0 else { return [] }
    return Array(unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
}

struct ContextBox: @unchecked Sendable {
    let value: lowbit_context
}

/// Packed weights and their per-row (or per-group) scales, as ``KernelsBackend`` keeps them.
final class PackedStorage: @unchecked Sendable {
    let format: lowbit_format
    let rows: Int, cols: Int, group: Int
    var bytes: [UInt8]
    let scales: [Float]

    init(_ w: QuantizedWeights) {
        format = w.mode.format
        rows = w.rows
        cols = w.cols
        group = w.groupLength
        bytes = kernelOutput(UInt8.self, lowbit_packed_size(w.mode.format, Int64(w.rows), Int64(w.cols)))
        scales = w.scalesPerRow
    }

    func withWeights<R>(_ body: (UnsafePointer<lowbit_packed_weights>) -> R) -> R {
        bytes.withUnsafeBufferPointer { data in
            scales.withUnsafeBufferPointer { s in
                var pw = lowbit_packed_weights(format: format, m: Int64(rows), k: Int64(cols), group: Int64(group),
                                               data: data.baseAddress, scales: s.baseAddress)
                return withUnsafePointer(to: &pw, body)
            }
        }
    }
}

extension KernelsBackend: AccumulatingMatmul {}

/// A backend whose int8 products can come out dequantized per row in the same pass: QT's
/// backward scales each row of its two products at once, and so skips writing and reading
/// the int32 sums.
protocol RowScaledInt8Product {
    /// c[i · ldc + j] = Float(Σₖ a[i, k] · b[k, j]) · rowScales[i], for i < a.rows and j < b.cols.
    ///
    /// - Throws: what ``Backend/gemmInt8(_:_:transposeA:transposeB:)`` throws, and
    ///   ``LowBitError/invalidShape(_:)`` for a scale count other than a's rows.
    func gemmInt8(_ a: Int8Matrix, rowScales: [Float], _ b: Int8Matrix, into c: UnsafeMutablePointer<Float>, ldc: Int) throws
}

extension KernelsBackend: RowScaledInt8Product {
    func gemmInt8(_ a: Int8Matrix, rowScales: [Float], _ b: Int8Matrix, into c: UnsafeMutablePointer<Float>, ldc: Int) throws {
        let (m, n, k) = try checkGemm(a, b, transposeA: false, transposeB: false)
        guard rowScales.count == m else { throw LowBitError.invalidShape("\(rowScales.count) row scales for \(m) rows") }
        var workspace = kernelOutput(UInt8.self, lowbit_gemm_s8_f32_workspace_size(Int64(m), Int64(n), Int64(k)))
        let status = withUnsafePointer(to: context) { ctx in
            lowbit_gemm_s8_f32(ctx, 0, 0, Int64(m), Int64(n), Int64(k), a.values, Int64(a.stride), rowScales,
                               b.values, Int64(b.stride), c, Int64(ldc), &workspace)
        }
        try check(status, "int8 GEMM")
    }
}

/// A backend that transposes a matrix with its rows scaled in one pass of its own kernels.
protocol ScaledTranspose {
    /// out[j · n + i] = x[i · m + j] · scales[i] for x of n rows of m; `out` holds m · n floats.
    func transposeScaled(_ x: UnsafeBufferPointer<Float>, rows n: Int, cols m: Int, scales: UnsafeBufferPointer<Float>,
                         into out: UnsafeMutableBufferPointer<Float>) throws
    /// ``Backend/quantizeStochastic(rows:seed:)`` of that transpose, bit for bit, without the
    /// float transpose in memory.
    func quantizeStochasticTransposed(_ x: UnsafeBufferPointer<Float>, rows n: Int, cols m: Int,
                                      scales: UnsafeBufferPointer<Float>, seed: UInt64) throws -> QuantizedActivations
}

extension KernelsBackend: ScaledTranspose {
    func transposeScaled(_ x: UnsafeBufferPointer<Float>, rows n: Int, cols m: Int, scales: UnsafeBufferPointer<Float>,
                         into out: UnsafeMutableBufferPointer<Float>) throws {
        precondition(x.count >= n * m && scales.count >= n && out.count >= n * m)
        guard n > 0, m > 0 else { return }
        let status = withUnsafePointer(to: context) { ctx in
            lowbit_transpose_scaled(ctx, x.baseAddress!, Int64(n), Int64(m), scales.baseAddress!, out.baseAddress!)
        }
        try check(status, "scaled transpose")
    }

    func quantizeStochasticTransposed(_ x: UnsafeBufferPointer<Float>, rows n: Int, cols m: Int,
                                      scales: UnsafeBufferPointer<Float>, seed: UInt64) throws -> QuantizedActivations {
        precondition(x.count >= n * m && scales.count >= n && n > 0 && m > 0)
        let stride = ReferenceQuantizer.paddedLength(n)
        var q = kernelOutput(Int8.self, m * stride)
        var rowScales = kernelOutput(Float.self, m)
        let status = withUnsafePointer(to: context) { ctx in
            lowbit_quantize_stochastic_transposed(ctx, x.baseAddress!, Int64(n), Int64(m), scales.baseAddress!, seed,
                                                  &q, Int64(stride), &rowScales)
        }
        try check(status, "gradient")
        return QuantizedActivations(quantized: m, cols: n, stride: stride, values: q, scales: rowScales)
    }
}
