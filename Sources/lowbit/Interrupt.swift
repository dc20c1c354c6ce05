import Foundation
import Synchronization

/// Ctrl-C handling for training: the first SIGINT asks the run to stop after its current
/// step (it then saves a checkpoint); a second one ends the process at once.
enum Interrupt {
    /// Set by the signal handler, read by the training threads: an atomic (a plain
    /// sig_atomic_t is safe for the handler but a data race for the readers, which
    /// ThreadSanitizer reported when a Ctrl-C landed while a model's loop read it).
    private static let flag = Atomic<Int32>(0)

    static func install() {
        // The handler must not be the first to touch the global (its lazy initialisation is
        // not async-signal-safe).
        _ = flag.load(ordering: .relaxed)
        // A parent may have started us with SIGINT blocked (the mask is inherited): unblock it.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigprocmask(SIG_UNBLOCK, &set, nil)
        signal(SIGINT) { _ in
            Interrupt.flag.store(1, ordering: .relaxed)
            signal(SIGINT, SIG_DFL)
        }
    }

    static var requested: Bool { flag.load(ordering: .relaxed) != 0 }
}
