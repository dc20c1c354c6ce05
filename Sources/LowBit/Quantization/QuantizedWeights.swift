/// Quantized weights [rows, cols] as signed values and scales: the backend-independent form.
///
/// `value(row, col) * scale(row, col)` is the weight the forward pass uses.
public struct QuantizedWeights: Sendable, Equatable {
    /// The quantizer that produced the values, which fixes their range and packed width.
    public let mode: QuantizationMode
    /// The number of output channels (M), one per row.
    public let rows: Int
    /// The number of inputs per output channel (K), one per column.
    public let cols: Int
    /// Which weights share a scale; it fixes the count and layout of ``QuantizedWeights/scales``.
    public let granularity: Granularity
    /// Signed quantized values, row-major [rows, cols].
    public var values: [Int8]
    /// One scale per scope: 1 (per tensor), or [rows][groups].
    public var scales: [Float]

    /// Creates quantized weights from signed values and scales, checking their counts.
    ///
    /// The values are not checked against the range of `mode`; ``KernelsBackend`` refuses
    /// out-of-range ones when it packs them.
    ///
    /// - Throws: ``LowBitError/invalidShape(_:)`` if `rows` or `cols` is not positive, if `values`
    ///   does not hold `rows * cols` elements, or if `scales` does not hold one per scope of
    ///   `granularity`.
    public init(mode: QuantizationMode, rows: Int, cols: Int, granularity: Granularity, values: [Int8], scales: [Float]) throws {
        guard rows > 0, cols > 0 else { throw LowBitError.invalidShape("weights must be non-empty, got [\(rows), \(cols)]") }
        guard values.count == rows * cols else {
            throw LowBitError.invalidShape("weights [\(rows), \(cols)] need \(rows * cols) values, got \(values.count)")
        }
        if case .perGroup(let n) = granularity, n <= 0 {
            throw LowBitError.invalidArgument("a scale group must hold at least one column, got \(n)")
        }
        // Other backends refuse these later (or read past the scales): refuse them here, once.
        // The range first, in a loop that vectorizes (a training step makes these every step),
        // then the offending value for the message.
        let (low, high) = values.withUnsafeBufferPointer { v in
            var low = Int8.max, high = Int8.min
            for x in v { low = min(low, x); high = max(high, x) }
            return (low, high)
        }
        if Int(low).magnitude > mode.qmax || Int(high).magnitude > mode.qmax,
           let v = values.first(where: { Int($0).magnitude > mode.qmax }) {
            throw LowBitError.invalidArgument("\(mode.rawValue) values lie in [-\(mode.qmax), \(mode.qmax)], got \(v)")
        }
        if let s = scales.first(where: { !($0.isFinite && $0 >= 0) }) {
            throw LowBitError.invalidArgument("scales must be finite and non-negative, got \(s)")
        }
        guard scales.count == granularity.scaleCount(rows: rows, cols: cols) else {
            throw LowBitError.invalidShape("\(granularity) needs \(granularity.scaleCount(rows: rows, cols: cols)) scales, got \(scales.count)")
        }
        self.mode = mode
        self.rows = rows
        self.cols = cols
        self.granularity = granularity
        self.values = values
        self.scales = scales
    }

    /// Columns per scale group (cols when scales are per row or per tensor).
    public var groupLength: Int {
        let g = granularity.groupLength(cols: cols)
        return g == 0 ? cols : g
    }

    /// Scale groups per row.
    public var groupsPerRow: Int { (cols + groupLength - 1) / groupLength }

    /// The scale that applies to (row, col).
    @inline(__always)
    public func scale(row: Int, col: Int) -> Float {
        granularity == .perTensor ? scales[0] : scales[row * groupsPerRow + col / groupLength]
    }

    /// Scales laid out [rows][groupsPerRow], replicating a per-tensor scale.
    public var scalesPerRow: [Float] {
        granularity == .perTensor ? [Float](repeating: scales[0], count: rows) : scales
    }

    /// The float weights the forward pass uses: value * scale.
    public func dequantized() -> Tensor {
        var out = kernelOutput(Float.self, rows * cols)
        let perRow = scalesPerRow, groups = (cols + groupLength - 1) / groupLength
        values.withUnsafeBufferPointer { v in
            out.withUnsafeMutableBufferPointer { o in
                for r in 0..<rows {
                    for g in 0..<groups {
                        let s = perRow[r * groups + g]
                        let row = r &* cols
                        for c in (g * groupLength)..<min((g + 1) * groupLength, cols) { o[row &+ c] = Float(v[row &+ c]) * s }
                    }
                }
            }
        }
        return try! Tensor(shape: [rows, cols], scalars: out)
    }
}

/// Int8 activations [tokens, cols], absmax per token, rows padded with zeros to `stride`
/// (the padded row length the packed matmul reads).
public struct QuantizedActivations: Sendable, Equatable {
    /// The number of rows, one per token (N).
    public let tokens: Int
    /// The number of values per token (K), not counting the zero padding.
    public let cols: Int
    /// The padded row length of `values`, at least `cols`; the quantizers use K rounded up
    /// to a multiple of 32.
    public let stride: Int
    /// [tokens, stride]; columns cols..<stride are zero.
    public var values: [Int8] { didSet { isKnownSymmetric = false } }
    /// Set by LowBit's quantizers, which never write -128, so that the backends need not scan
    /// for it on every product; any change to `values` clears it.
    var isKnownSymmetric = false
    /// One scale per token: absmax / 127.
    public var scales: [Float]

    /// Creates quantized activations from padded int8 rows and one scale per token.
    ///
    /// The values are not range-checked here: every backend refuses a -128 when it multiplies.
    ///
    /// - Precondition: `stride >= cols`, `values` holds `tokens * stride` elements, and `scales`
    ///   holds one per token.
    public init(tokens: Int, cols: Int, stride: Int, values: [Int8], scales: [Float]) {
        precondition(stride >= cols && values.count == tokens * stride && scales.count == tokens)
        self.tokens = tokens
        self.cols = cols
        self.stride = stride
        self.values = values
        self.scales = scales
    }

    /// LowBit's own quantizers' results: values known to be in [-127, 127].
    init(quantized tokens: Int, cols: Int, stride: Int, values: [Int8], scales: [Float]) {
        self.init(tokens: tokens, cols: cols, stride: stride, values: values, scales: scales)
        isKnownSymmetric = true
    }

    /// Returns the int8 value of column `col` of token `token`, reading through the row stride.
    @inline(__always)
    public func value(token: Int, col: Int) -> Int8 { values[token * stride + col] }

    /// The int8 values as a matrix (for the int8 GEMM of the quantized backward pass).
    public var matrix: Int8Matrix {
        var m = Int8Matrix(rows: tokens, cols: cols, stride: stride, values: values)
        m.isKnownSymmetric = isKnownSymmetric
        return m
    }

    /// scale * value, [tokens, cols].
    public func dequantized() -> Tensor {
        var out = kernelOutput(Float.self, tokens * cols)
        values.withUnsafeBufferPointer { v in
            out.withUnsafeMutableBufferPointer { o in
                for t in 0..<tokens {
                    let s = scales[t], from = t &* stride, to = t &* cols
                    for c in 0..<cols { o[to &+ c] = Float(v[from &+ c]) * s }
                }
            }
        }
        return try! Tensor(shape: [tokens, cols], scalars: out)
    }

    /// Equal when they hold the same tokens, values and scales.
    public static func == (a: QuantizedActivations, b: QuantizedActivations) -> Bool {
        a.tokens == b.tokens && a.cols == b.cols && a.stride == b.stride && a.values == b.values && a.scales == b.scales
    }
}

/// A row-major int8 matrix with a row stride.
public struct Int8Matrix: Sendable, Equatable {
    /// The number of rows.
    public let rows: Int
    /// The number of columns in use in each row.
    public let cols: Int
    /// The distance in `values` from the start of one row to the next, at least `cols`.
    public let stride: Int
    /// The elements, row `r` starting at `r * stride`: at least `(rows - 1) * stride + cols`
    /// of them, since the last row need not be padded.
    public var values: [Int8] { didSet { isKnownSymmetric = false } }
    /// Values known to be in [-127, 127] (quantized activations of LowBit's quantizers); any
    /// change to `values` clears it.
    var isKnownSymmetric = false

    /// Equal when they hold the same shape and values.
    public static func == (a: Int8Matrix, b: Int8Matrix) -> Bool {
        a.rows == b.rows && a.cols == b.cols && a.stride == b.stride && a.values == b.values
    }

    /// Creates a matrix over `values` with rows `stride` elements apart (`cols` when `stride`
    /// is nil).
    ///
    /// - Precondition: `rows` and `cols` are not negative, `stride >= cols`, and `values` holds at
    ///   least `(rows - 1) * stride + cols` elements.
    public init(rows: Int, cols: Int, stride: Int? = nil, values: [Int8]) {
        let s = stride ?? cols
        precondition(rows >= 0 && cols >= 0 && s >= cols && values.count >= (rows - 1) * s + cols)
        self.rows = rows
        self.cols = cols
        self.stride = s
        self.values = values
    }

    /// Accesses the element at `row`, `col`, reading through the row stride.
    @inline(__always)
    public subscript(row: Int, col: Int) -> Int8 { values[row * stride + col] }
}
