#if LOWBIT_MPI
import COpenMPI
import Foundation
import LowBit

/// The processes `mpirun` started, as a ``ProcessGroup``: sums are `MPI_Allreduce`, so every
/// rank gets the same bits (Open MPI's reduction order depends only on the rank count and the
/// message size; with two ranks each sum is one addition).
///
/// MPI is initialised once per process, by ``world()``, and finalised by ``finalize()`` or at
/// exit. A rank that fails should call ``abort(_:)`` after saying why, so that `mpirun` stops
/// every rank instead of leaving them waiting in a sum; a rank that dies is reported by `mpirun`, which
/// then stops the others.
public final class MPIProcessGroup: ProcessGroup, @unchecked Sendable {
    public let rank: Int
    public let size: Int
    /// The ranks on this machine (this one included): they share its cores.
    public let localSize: Int
    private let communicator: MPI_Comm

    private static let lock = NSLock()
    nonisolated(unsafe) private static var shared: MPIProcessGroup?

    private init() throws {
        var provided: Int32 = 0
        try Self.check(MPI_Init_thread(nil, nil, Int32(MPI_THREAD_SERIALIZED), &provided), "MPI_Init_thread")
        guard provided >= Int32(MPI_THREAD_SERIALIZED) else {
            throw LowBitError.invalidArgument("this MPI library does not allow calls from several threads (one at a time)")
        }
        communicator = lowbit_mpi_comm_world()
        var r: Int32 = 0, s: Int32 = 0
        try Self.check(MPI_Comm_rank(communicator, &r), "MPI_Comm_rank")
        try Self.check(MPI_Comm_size(communicator, &s), "MPI_Comm_size")
        var local: MPI_Comm?
        try Self.check(MPI_Comm_split_type(communicator, Int32(MPI_COMM_TYPE_SHARED), r, lowbit_mpi_info_null(), &local),
                       "MPI_Comm_split_type")
        var l: Int32 = 1
        try Self.check(MPI_Comm_size(local, &l), "MPI_Comm_size")
        MPI_Comm_free(&local)
        (rank, size, localSize) = (Int(r), Int(s), Int(l))
    }

    /// Every process `mpirun` started (MPI_COMM_WORLD); the first call initialises MPI. A
    /// process started without `mpirun` is a group of one.
    public static func world() throws -> MPIProcessGroup {
        try lock.withLock {
            if let shared { return shared }
            let group = try MPIProcessGroup()
            shared = group
            atexit { MPIProcessGroup.shared?.finalize() }   // mpirun takes a rank that ends without it for a failure
            return group
        }
    }

    public func allReduceSum(_ values: inout [Float]) throws {
        try reduce(&values, lowbit_mpi_float())
    }

    public func allReduceSum(_ values: inout [Double]) throws {
        try reduce(&values, lowbit_mpi_double())
    }

    public func barrier() throws {
        try Self.check(MPI_Barrier(communicator), "MPI_Barrier")
    }

    /// The MPI library's own name and version (`MPI_Get_library_version`), e.g. "Open MPI v4.1.4, …";
    /// it needs no initialisation.
    public static var libraryVersion: String {
        var text = [CChar](repeating: 0, count: Int(MPI_MAX_LIBRARY_VERSION_STRING) + 1)
        var length: Int32 = 0
        guard MPI_Get_library_version(&text, &length) == MPI_SUCCESS else { return "unknown MPI library" }
        let line = String(decoding: text.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return line.split(separator: ",").first.map(String.init) ?? line
    }

    /// Stops every rank of the job with exit code `code` (`mpirun` names this rank).
    public func abort(_ code: Int32) -> Never {
        MPI_Abort(communicator, code)
        exit(code)
    }

    /// Ends MPI in this process; the group is not usable after it.
    public func finalize() {
        var done: Int32 = 0
        MPI_Finalized(&done)
        if done == 0 { MPI_Finalize() }
    }

    /// In place, in chunks that MPI's 32-bit counts can hold.
    private func reduce<T>(_ values: inout [T], _ type: MPI_Datatype) throws {
        let chunk = Int(Int32.max / 2)
        try values.withUnsafeMutableBufferPointer { buffer in
            var start = 0
            while start < buffer.count {
                let n = min(chunk, buffer.count - start)
                try Self.check(MPI_Allreduce(lowbit_mpi_in_place(), buffer.baseAddress! + start, Int32(n), type, lowbit_mpi_sum(), communicator),
                               "MPI_Allreduce")
                start += n
            }
        }
    }

    private static func check(_ code: Int32, _ call: String) throws {
        guard code != MPI_SUCCESS else { return }
        var text = [CChar](repeating: 0, count: Int(MPI_MAX_ERROR_STRING) + 1)
        var length: Int32 = 0
        MPI_Error_string(code, &text, &length)
        let message = String(decoding: text.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        throw LowBitError.invalidArgument("\(call) failed: \(message)")
    }
}
#endif
