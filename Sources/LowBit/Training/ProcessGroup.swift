import Foundation

/// The processes of a data-parallel run and the collective operations its steps need.
///
/// Every rank runs the same program on the same data: at each step it takes its share of the
/// batch's sequences, and the group's sums turn the shares' gradients into the batch's on every
/// rank, so every rank applies the same update and keeps the same weights. `LowBitMPI`'s
/// `MPIProcessGroup` spans processes and machines over Open MPI; ``InProcessGroup`` runs its
/// ranks as threads of one process. Every rank must make the same calls in the same order.
public protocol ProcessGroup: AnyObject, Sendable {
    /// This process's place in the group, from 0 to `size - 1`. Rank 0 writes the run's files.
    var rank: Int { get }
    /// How many ranks the group has.
    var size: Int { get }
    /// Replaces `values` by their elementwise sum over the ranks; every rank must pass as many
    /// values, and every rank gets the same sums.
    func allReduceSum(_ values: inout [Float]) throws
    /// The same for doubles (statistics, flags, checksums).
    func allReduceSum(_ values: inout [Double]) throws
    /// Returns when every rank has called it.
    func barrier() throws
}

extension ProcessGroup {
    /// Whether `flag` is true on any rank (the same answer on every rank).
    public func anyRank(_ flag: Bool) throws -> Bool {
        var v: [Double] = [flag ? 1 : 0]
        try allReduceSum(&v)
        return v[0] > 0
    }

    /// Every rank's `value`, in rank order: each rank fills its own slot and the sum of the
    /// others' zeros leaves it exact.
    public func allGather(_ value: Double) throws -> [Double] {
        var v = [Double](repeating: 0, count: size)
        v[rank] = value
        try allReduceSum(&v)
        return v
    }
}

/// A group whose ranks are threads of this process: for tests of distributed training and
/// for trying it out without MPI. Its sums add the ranks' values in rank order, so a run on
/// it takes exactly the steps a ``Trainer`` with as many `workers` takes.
public final class InProcessGroup: ProcessGroup, @unchecked Sendable {
    public let rank: Int
    public var size: Int { shared.size }
    private let shared: Shared

    private init(rank: Int, shared: Shared) {
        self.rank = rank
        self.shared = shared
    }

    /// Runs `body` on `size` threads, one per rank, each with its own group, and returns the
    /// ranks' results in rank order. When a rank throws, the others' collective calls throw
    /// too (instead of waiting for it forever) and the first rank's error is rethrown.
    public static func run<T>(size: Int, _ body: @escaping @Sendable (InProcessGroup) throws -> T) throws -> [T] {
        guard (1...64).contains(size) else { throw LowBitError.invalidArgument("group size must be from 1 to 64, got \(size)") }
        let shared = Shared(size: size)
        let slots = UnsafeMutableBufferPointer<Result<T, any Error>?>.allocate(capacity: size)
        slots.initialize(repeating: nil)
        defer { slots.deinitialize(); slots.deallocate() }
        nonisolated(unsafe) let results = slots   // each thread writes its own slot
        // One thread per rank: the ranks wait for each other, so they cannot share a pool of
        // fewer threads (DispatchQueue.concurrentPerform runs as many at once as there are CPUs).
        let done = DispatchSemaphore(value: 0)
        for r in 0..<size {
            let thread = Thread {
                results[r] = Result { try body(InProcessGroup(rank: r, shared: shared)) }
                if case .failure = results[r] { shared.fail(rank: r) }
                done.signal()
            }
            thread.stackSize = 16 << 20
            thread.start()
        }
        for _ in 0..<size { done.wait() }
        if let failed = slots.firstIndex(where: { if case .failure(let e) = $0, !(e is RankFailed) { true } else { false } }) {
            _ = try slots[failed]!.get()
        }
        return try slots.map { try $0!.get() }
    }

    /// Thrown by the collective calls of the ranks still running once another rank has failed.
    public struct RankFailed: Error, CustomStringConvertible {
        public var rank: Int
        public var description: String { "rank \(rank) of the group failed" }
    }

    public func allReduceSum(_ values: inout [Float]) throws {
        values = try shared.sum(values.map(Double.init), rank: rank, float: true).map(Float.init)
    }

    public func allReduceSum(_ values: inout [Double]) throws {
        values = try shared.sum(values, rank: rank, float: false)
    }

    public func barrier() throws { _ = try shared.sum([], rank: rank, float: false) }

    /// The ranks' deposits and a generation-counted barrier.
    final class Shared: @unchecked Sendable {
        let size: Int
        private let condition = NSCondition()
        private var deposits: [[Double]?]
        private var arrived = 0, generation = 0
        private var result: [Double] = []
        private var failedRank: Int?

        init(size: Int) {
            self.size = size
            deposits = Array(repeating: nil, count: size)
        }

        func fail(rank: Int) {
            condition.lock()
            if failedRank == nil { failedRank = rank }
            condition.broadcast()
            condition.unlock()
        }

        /// Every rank's `values` summed in rank order. A float sum rounds to float after each
        /// addition, as a float all-reduce does.
        func sum(_ values: [Double], rank: Int, float: Bool) throws -> [Double] {
            condition.lock()
            defer { condition.unlock() }
            if let failedRank { throw RankFailed(rank: failedRank) }
            deposits[rank] = values
            arrived += 1
            let mine = generation
            if arrived == size {
                let counts = Set(deposits.map { $0!.count })
                guard counts.count == 1 else {
                    failedRank = rank
                    condition.broadcast()
                    throw LowBitError.invalidShape("ranks passed \(deposits.map { $0!.count }) values to one sum")
                }
                var total = deposits[0]!
                for r in 1..<size {
                    for (i, v) in deposits[r]!.enumerated() {
                        total[i] = float ? Double(Float(total[i]) + Float(v)) : total[i] + v
                    }
                }
                result = total
                arrived = 0
                deposits = Array(repeating: nil, count: size)
                generation += 1
                condition.broadcast()
                return total
            }
            while generation == mine && failedRank == nil { condition.wait() }
            if generation == mine, let failedRank { throw RankFailed(rank: failedRank) }
            return result
        }
    }
}
