import CDescentBLAS
import CDescentOpenBLASCore

/// Which of OpenBLAS' kernel sets ("cores") runs Descent's matrix products.
///
/// OpenBLAS (Debian's 0.3.21, built for every x86 generation) picks its kernels from the CPU's model
/// number and falls back to its SSE3 "Prescott" kernels for a model it does not list, 4 to 6 times
/// slower than its AVX-512 ones. A start-up check in `CDescentOpenBLASCore` (run before `main`, before any
/// product) replaces that fallback with the kernels the CPU's features allow; ``override`` says whether it
/// did. Setting `OPENBLAS_CORETYPE` yourself keeps OpenBLAS' (and your) choice.
public enum OpenBLASCore {
    /// The kernel set in use, as OpenBLAS names it (for example "Cooperlake", "Haswell", "Zen").
    public static var name: String {
        let name = OpenBLASForkGate.call { openblas_get_corename() }
        guard let name else { return "unknown" }
        return String(cString: name)
    }

    /// The kernel set the start-up check chose in place of OpenBLAS' Prescott fallback (for example
    /// "COOPERLAKE"), or `nil` when it left OpenBLAS' choice alone.
    public static var override: String? {
        descent_openblas_core_override().map { String(cString: $0) }
    }

    /// The kernel set the check chooses for this CPU from its CPUID features, whatever OpenBLAS chose:
    /// "COOPERLAKE", "SKYLAKEX", "HASWELL" or "SANDYBRIDGE"; `nil` for a CPU without AVX.
    public static var bestForThisCPU: String? {
        descent_openblas_core_for_cpu().map { String(cString: $0) }
    }
}
