/// The character set recorded with an HDF5 string (h5py writes `str` as UTF-8, `bytes` as ASCII).
public enum HDF5CharacterSet: Sendable, Equatable {
    /// `H5T_CSET_ASCII`.
    case ascii
    /// `H5T_CSET_UTF8`.
    case utf8
}

/// An attribute's value, as written: the shapes and types Keras' files use.
///
/// Keras writes every piece of metadata as an attribute: JSON documents and versions as scalar
/// variable-length strings, name lists (`layer_names`, `weight_names`) as one-dimensional string arrays
/// (fixed-length byte strings in tf_keras' files), and an empty name list as an empty float64 array.
public enum HDF5Attribute: Sendable, Equatable {
    /// A scalar variable-length string.
    case string(String, HDF5CharacterSet = .utf8)
    /// A one-dimensional array of variable-length strings.
    case strings([String], HDF5CharacterSet = .utf8)
    /// A one-dimensional array of fixed-length, NUL-padded strings as long as the longest one (numpy's
    /// `S` dtype, which h5py writes for a list of `bytes`). An empty list is written as an empty float64
    /// array, as numpy makes `np.asarray([])` float64.
    case fixedStrings([String])
    /// A one-dimensional float64 array (possibly empty).
    case doubles([Double])
    /// A scalar int64.
    case int64(Int64)
}

/// An attribute's value, as read: strings of any HDF5 string type (fixed or variable length, ASCII or
/// UTF-8) come back as Swift strings, numbers of any integer or float type as `Int64` or `Double`.
public enum HDF5AttributeValue: Sendable, Equatable {
    /// A scalar string.
    case string(String)
    /// A one-dimensional (or empty) string array.
    case strings([String])
    /// Integers (a scalar is an array of one), converted to `Int64`.
    case integers([Int64], scalar: Bool)
    /// Floating-point numbers (a scalar is an array of one), converted to `Double`.
    case doubles([Double], scalar: Bool)

    /// The value as a list of strings: a string array, a scalar string as a list of one, or an empty
    /// numeric array (tf_keras writes an empty name list as an empty float64 array) as an empty list.
    public var stringList: [String]? {
        switch self {
        case .string(let s): return [s]
        case .strings(let list): return list
        case .integers(let values, let scalar): return values.isEmpty && !scalar ? [] : nil
        case .doubles(let values, let scalar): return values.isEmpty && !scalar ? [] : nil
        }
    }

    /// The value as one string, if it is a scalar string or an array of exactly one.
    public var singleString: String? {
        switch self {
        case .string(let s): return s
        case .strings(let list) where list.count == 1: return list[0]
        default: return nil
        }
    }

    /// A short description of the value's kind, for error messages.
    public var kindDescription: String {
        switch self {
        case .string: return "a string"
        case .strings(let l): return "an array of \(l.count) strings"
        case .integers(let v, let scalar): return scalar ? "an integer" : "an array of \(v.count) integers"
        case .doubles(let v, let scalar): return scalar ? "a number" : "an array of \(v.count) numbers"
        }
    }
}
