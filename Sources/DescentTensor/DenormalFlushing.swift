import CDescentMath

/// Denormal handling of Descent's kernels.
///
/// TensorFlow runs its CPU kernels with denormals flushed to zero (x86 `MXCSR` FTZ and DAZ bits): a
/// result below the smallest normal float (about 1.2e-38) becomes 0, and such an input counts as 0. It
/// matters for optimizers: with a gradient that stays exactly 0 (a pixel that is always blank, a dead
/// ReLU unit), Adam's `m ← β₁m` decays into the denormal range, where IEEE arithmetic keeps it at the
/// smallest denormal forever (0.9 × 1.4e-45 rounds back up) and every operation on it is slow; with
/// flushing it becomes 0. Descent's update kernels flush the same way, for parity and for speed; the
/// mode is set for the kernel's duration only, on the thread that runs it, and restored after.
public enum DenormalFlushing {
    /// Whether denormals are flushed on the current thread now.
    public static var isActive: Bool {
        let state = descent_fp_state()
        return state != 0 && descent_fp_state_flushing_denormals(state) == state
    }

    /// Runs `body` with denormals flushed to zero on the current thread, then restores the previous mode.
    @inlinable
    public static func run<R>(_ body: () throws -> R) rethrows -> R {
        try run(inMode: descent_fp_state_flushing_denormals(descent_fp_state()), body)
    }

    /// Runs `body` in the floating-point mode `mode` (an `MXCSR` value, e.g. a parallel region's caller's),
    /// then restores this thread's own mode; nothing is changed when the modes are equal.
    @inlinable
    static func run<R>(inMode mode: UInt32, _ body: () throws -> R) rethrows -> R {
        let own = descent_fp_state()
        if own == mode { return try body() }
        descent_set_fp_state(mode)
        defer { descent_set_fp_state(own) }
        return try body()
    }
}
