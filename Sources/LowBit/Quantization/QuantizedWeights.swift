/// Quantized weights [rows, cols] as signed values and scales: the backend-independent form.
///
/// `value(row, col) * scale(row, col)` is the weight the forward pass uses.
public struct QuantizedWeights: Sendable, Equatable {
    public let mode: QuantizationMode
    public let rows: Int
    public let cols: Int
    public let granularity: Granularity
    /// Signed quantized values, row-major [rows, cols].
    public var values: [Int8]
    /// One scale per scope: 1 (per tensor), or [rows][groups].
    public var scales: [Float]

    public init(mode: QuantizationMode, rows: Int, cols: Int, granularity: Granularity, values: [Int8], scales: [Float]) throws {
        guard rows > 0, cols > 0 else { throw LowBitError.invalidShape("weights must be non-empty, got [\(rows), \(cols)]") }
        guard values.count == rows * cols else {
            throw LowBitError.invalidShape("weights [\(rows), \(cols)] need \(rows * cols) values, got \(values.count)")
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
        var out = [Float](repeating: 0, count: rows * cols)
        for r in 0..<rows { for c in 0..<cols { out[r * cols + c] = Float(values[r * cols + c]) * scale(row: r, col: c) } }
        return try! Tensor(shape: [rows, cols], scalars: out)
    }
}

/// Int8 activations [tokens, cols], absmax per token, rows padded with zeros to `stride`
/// (the padded row length the packed matmul reads).
public struct QuantizedActivations: Sendable, Equatable {
    public let tokens: Int
    public let cols: Int
    public let stride: Int
    /// [tokens, stride]; columns cols..<stride are zero.
    public var values: [Int8]
    /// One scale per token: absmax / 127.
    public var scales: [Float]

    public init(tokens: Int, cols: Int, stride: Int, values: [Int8], scales: [Float]) {
        precondition(stride >= cols && values.count == tokens * stride && scales.count == tokens)
        self.tokens = tokens
        self.cols = cols
        self.stride = stride
        self.values = values
        self.scales = scales
    }

    @inline(__always)
    public func value(token: Int, col: Int) -> Int8 { values[token * stride + col] }

    /// The int8 values as a matrix (for the int8 GEMM of the quantized backward pass).
    public var matrix: Int8Matrix { Int8Matrix(rows: tokens, cols: cols, stride: stride, values: values) }

    /// scale * value, [tokens, cols].
    public func dequantized() -> Tensor {
        Tensor(shape: [tokens, cols]) { i in Float(values[(i / cols) * stride + i % cols]) * scales[i / cols] }
    }
}

/// A row-major int8 matrix with a row stride.
public struct Int8Matrix: Sendable, Equatable {
    public let rows: Int
    public let cols: Int
    public let stride: Int
    public var values: [Int8]

    public init(rows: Int, cols: Int, stride: Int? = nil, values: [Int8]) {
        let s = stride ?? cols
        precondition(rows >= 0 && cols >= 0 && s >= cols && values.count >= (rows - 1) * s + cols)
        self.rows = rows
        self.cols = cols
        self.stride = s
        self.values = values
    }

    @inline(__always)
    public subscript(row: Int, col: Int) -> Int8 { values[row * stride + col] }
}
