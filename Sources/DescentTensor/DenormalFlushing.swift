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
        let saved = descent_fp_state()
        descent_set_fp_state(descent_fp_state_flushing_denormals(saved))
        defer { descent_set_fp_state(saved) }
        return try body()
    }
}
