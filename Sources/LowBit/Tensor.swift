/// A dense, row-major array of `Float` with a shape.
///
/// `Tensor` is a value: copies are cheap until one of them is mutated. It is deliberately
/// small: the layers of LowBit need shapes, element access and little else, and every
/// heavy operation goes through a ``Backend``.
public struct Tensor: Sendable, Equatable {
    /// The extent of each dimension, outermost first.
    public let shape: [Int]
    /// The elements in row-major order; `scalars.count` is the product of `shape`.
    public var scalars: [Float]

    /// Creates a tensor from its elements; throws if their count does not match the shape.
    public init(shape: [Int], scalars: [Float]) throws {
        guard shape.allSatisfy({ $0 >= 0 }) else {
            throw LowBitError.invalidShape("negative dimension in \(shape)")
        }
        let count = shape.reduce(1, *)
        guard count == scalars.count else {
            throw LowBitError.invalidShape("shape \(shape) holds \(count) elements, got \(scalars.count)")
        }
        self.shape = shape
        self.scalars = scalars
    }

    /// A tensor of zeros.
    public init(zeros shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        self.shape = shape
        self.scalars = [Float](repeating: 0, count: shape.reduce(1, *))
    }

    /// Creates a tensor by calling `element` for each flat index.
    public init(shape: [Int], element: (Int) -> Float) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        self.shape = shape
        self.scalars = (0..<shape.reduce(1, *)).map(element)
    }

    /// The number of dimensions: 2 for a matrix, 0 for a single scalar.
    public var rank: Int { shape.count }
    /// The number of elements: the product of `shape`.
    public var count: Int { scalars.count }

    /// Rows and columns of a rank-2 tensor, or a shape error naming `role`.
    public func matrixShape(_ role: String) throws -> (rows: Int, cols: Int) {
        guard rank == 2 else {
            throw LowBitError.invalidShape("\(role) must be a matrix [rows, cols], got shape \(shape)")
        }
        return (shape[0], shape[1])
    }

    /// The index of the first NaN or infinity, if any.
    public var firstNonFiniteIndex: Int? {
        scalars.withUnsafeBufferPointer { b in
            guard !allFinite(b) else { return nil }
            for i in b.indices where !b[i].isFinite { return i }
            return nil
        }
    }

    /// Throws ``LowBitError/nonFinite(_:)`` if any element is NaN or infinite.
    public func checkFinite(_ role: String) throws {
        if let i = firstNonFiniteIndex {
            throw LowBitError.nonFinite("\(role) holds \(scalars[i]) at flat index \(i)")
        }
    }

    /// `body`, which reads this tensor and refuses NaN and infinity in it anyway (a kernel's
    /// pass), without a pass of ``checkFinite(_:)`` before it: that runs only when `body`
    /// refuses one, so the error still names `role`, the value and its place.
    func checkingFinite<T>(_ role: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch LowBitError.nonFinite(let what) {
            try checkFinite(role)
            throw LowBitError.nonFinite(what)
        }
    }

    /// The transpose of a matrix.
    public func transposed() throws -> Tensor {
        let (r, c) = try matrixShape("transposed operand")
        var out = [Float](repeating: 0, count: r * c)
        for i in 0..<r { for j in 0..<c { out[j * r + i] = scalars[i * c + j] } }
        return try Tensor(shape: [c, r], scalars: out)
    }
}

extension Tensor {
    /// The rows `indices` of a matrix, in that order: [indices.count, cols].
    func gatheringRows(_ indices: [Int]) throws -> Tensor {
        let (rows, cols) = try matrixShape("gathered matrix")
        var out = [Float](repeating: 0, count: indices.count * cols)
        for (i, r) in indices.enumerated() {
            precondition((0..<rows).contains(r), "row \(r) of \(rows)")
            out.replaceSubrange((i * cols)..<((i + 1) * cols), with: scalars[(r * cols)..<((r + 1) * cols)])
        }
        return try Tensor(shape: [indices.count, cols], scalars: out)
    }

    /// The inverse of ``gatheringRows(_:)``: a [rows, cols] matrix of zeros with row i of this
    /// one at row `indices[i]` (distinct, in 0..<rows).
    func scatteringRows(_ indices: [Int], into rows: Int) throws -> Tensor {
        let (n, cols) = try matrixShape("scattered matrix")
        precondition(indices.count == n, "\(indices.count) places for \(n) rows")
        var out = [Float](repeating: 0, count: rows * cols)
        for (i, r) in indices.enumerated() {
            precondition((0..<rows).contains(r), "row \(r) of \(rows)")
            out.replaceSubrange((r * cols)..<((r + 1) * cols), with: scalars[(i * cols)..<((i + 1) * cols)])
        }
        return try Tensor(shape: [rows, cols], scalars: out)
    }
}

/// Whether every value is finite: x · 0 is 0 for a finite x and NaN for NaN or ±∞, and a NaN
/// survives the sum. Sixteen lanes at a time, since this guards every layer's inputs.
func allFinite(_ b: UnsafeBufferPointer<Float>) -> Bool {
    guard let base = b.baseAddress else { return true }
    let raw = UnsafeRawPointer(base)
    var lanes = SIMD16<Float>(repeating: 0)
    var i = 0
    while i + 16 <= b.count {
        lanes += raw.loadUnaligned(fromByteOffset: i * MemoryLayout<Float>.stride, as: SIMD16<Float>.self) * 0
        i += 16
    }
    var rest: Float = 0
    while i < b.count { rest += b[i] * 0; i += 1 }
    return (lanes.sum() + rest) == 0
}
