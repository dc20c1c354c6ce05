import Foundation

/// Ctrl-C handling for training: the first SIGINT asks the run to stop after its current
/// step (it then saves a checkpoint); a second one ends the process at once.
enum Interrupt {
    nonisolated(unsafe) private static var flag: sig_atomic_t = 0

    static func install() {
        // A parent may have started us with SIGINT blocked (the mask is inherited): unblock it.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigprocmask(SIG_UNBLOCK, &set, nil)
        signal(SIGINT) { _ in
            Interrupt.flag = 1
            signal(SIGINT, SIG_DFL)
        }
    }

    static var requested: Bool { flag != 0 }
}
