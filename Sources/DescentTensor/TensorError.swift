/// An error a caller can cause when building or combining tensors.
///
/// Every message names the operation and the operands' shapes or dtypes, e.g.
/// `add: incompatible shapes [2, 3] and [4] (cannot broadcast)`.
public enum TensorError: Error, Equatable, CustomStringConvertible, Sendable {
    /// Two shapes that cannot be combined (broadcast, matrix-multiplied, concatenated, assigned).
    case incompatibleShapes(operation: String, lhs: [Int], rhs: [Int], reason: String)
    /// Two operands of different dtypes (Descent, like TensorFlow, never promotes silently).
    case dtypeMismatch(operation: String, lhs: DType, rhs: DType)
    /// An operation that does not support the operand's dtype (e.g. `exp` of an `int64` tensor).
    case unsupportedDType(operation: String, dtype: DType)
    /// A shape that is invalid on its own (negative dimension, wrong element count, bad reshape).
    case invalidShape(operation: String, shape: [Int], reason: String)
    /// An axis outside `-rank..<rank`, or repeated.
    case invalidAxis(operation: String, axis: Int, rank: Int)
    /// An index outside its dimension.
    case indexOutOfRange(operation: String, index: Int, bound: Int)
    /// Any other invalid argument.
    case invalidArgument(operation: String, reason: String)
    /// A shape whose element count (the product of its non-zero dimensions) exceeds
    /// ``Shape/maximumElementCount``: it would overflow a 64-bit count or byte size.
    case shapeTooLarge(operation: String, shape: [Int])
    /// A buffer that could not be allocated: larger than the machine's memory (`machineBytes`, RAM plus
    /// swap), or refused by the system allocator.
    case allocationFailed(operation: String, shape: [Int], bytes: Int, machineBytes: Int)

    /// A human-readable message naming the operation and operands.
    public var description: String {
        switch self {
        case let .incompatibleShapes(op, lhs, rhs, reason):
            return "\(op): incompatible shapes \(lhs) and \(rhs) (\(reason))"
        case let .dtypeMismatch(op, lhs, rhs):
            return "\(op): dtype mismatch, \(lhs) vs \(rhs) (cast one operand first)"
        case let .unsupportedDType(op, dtype):
            return "\(op): unsupported dtype \(dtype) (expected float32 or float64)"
        case let .invalidShape(op, shape, reason):
            return "\(op): invalid shape \(shape) (\(reason))"
        case let .invalidAxis(op, axis, rank):
            return "\(op): axis \(axis) is out of range for a tensor of rank \(rank) (expected \(-rank)..<\(rank))"
        case let .indexOutOfRange(op, index, bound):
            return "\(op): index \(index) is out of range [0, \(bound))"
        case let .invalidArgument(op, reason):
            return "\(op): \(reason)"
        case let .shapeTooLarge(op, shape):
            return "\(op): shape \(shape) is too large (its element count overflows: at most "
                + "\(Shape.maximumElementCount) elements, counting only non-zero dimensions)"
        case let .allocationFailed(op, shape, bytes, machineBytes):
            let why = bytes > machineBytes
                ? "the machine has \(machineBytes) bytes of memory (RAM + swap)"
                : "the system allocator is out of memory"
            return "\(op): cannot allocate \(bytes) bytes for a tensor of shape \(shape): \(why)"
        }
    }
}
