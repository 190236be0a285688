@_spi(DescentInternals) import DescentTensor

/// Keras' object naming: snake-cased class names made unique per process (`"dense"`, `"dense_1"`, ...),
/// shared by optimizers, layers and models.
public enum KerasNaming {
    private static let counts = SanitizerVisibleMutex<[String: Int]>([:])

    /// Keras' `to_snake_case`: `"Dense"` → `"dense"`, `"SGD"` → `"sgd"`, `"RMSprop"` → `"rm_sprop"`,
    /// `"BatchNormalization"` → `"batch_normalization"`.
    public static func snakeCase(_ name: String) -> String {
        var out = ""
        let chars = Array(name)
        for (i, c) in chars.enumerated() {
            if c.isUppercase && i > 0 && (chars[i - 1].isLowercase || (i + 1 < chars.count && chars[i + 1].isLowercase)) {
                out += "_"
            }
            out += c.lowercased()
        }
        return out
    }

    /// `base` the first time, then `base_1`, `base_2`, ... (Keras' `unique_object_name`, zero-based).
    public static func uniqueName(_ base: String) -> String {
        let n = counts.withLock { counts -> Int in
            defer { counts[base, default: 0] += 1 }
            return counts[base, default: 0]
        }
        return n == 0 ? base : "\(base)_\(n)"
    }
}
