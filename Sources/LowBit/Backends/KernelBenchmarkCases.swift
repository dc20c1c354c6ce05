/// The one list of matmul cases that `lowbit bench kernels` times by default and the
/// package-benchmark suite (Benchmarks/LowBitBenchmarks) times always, so that the two
/// harnesses measure the same thing and their numbers can be set side by side.
public enum KernelBenchmarkCases {
    /// Weight shapes (M outputs × K inputs): a small layer, a square 4096 projection, and a
    /// 7B-class model's FFN up-projection, whose int8 weights (45 MB) no longer fit in L3.
    public static let shapes: [(m: Int, k: Int)] = [(1024, 1024), (4096, 4096), (11008, 4096)]
    /// Tokens per call (N): one token (decoding: a matrix-vector product), a few, and
    /// prefill-sized batches.
    public static let tokens: [Int] = [1, 8, 64, 256]
}
