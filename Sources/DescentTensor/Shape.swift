/// Element counts of tensor shapes: the one place Descent multiplies dimensions.
///
/// **The shape invariant.** Every dimension of a tensor's shape is `>= 0`, and the product of its
/// *non-zero* dimensions times ``maximumElementBytes`` fits in an `Int`. So the element count, the byte
/// count in any dtype, and every partial product a kernel forms (a row's size, the outer and inner sizes
/// around an axis) fit in an `Int` too, even when a zero dimension makes the tensor empty
/// (`[0, 1 << 62, 4]` is rejected: its rows would be `1 << 64` elements).
///
/// Every shape a tensor is created with passes ``elementCount(_:operation:)``, which throws a
/// ``TensorError`` instead of trapping on overflow. Kernels that take a product of part of an existing
/// tensor's shape use ``product(_:)``, which relies on the invariant.
public enum Shape {
    /// The size in bytes of the widest element (`float64`, `int64`): byte counts are checked against it,
    /// so a valid shape is valid in every dtype.
    public static let maximumElementBytes = 8

    /// The largest product of non-zero dimensions a shape may have.
    public static let maximumElementCount = Int.max / maximumElementBytes

    /// The number of elements of `shape` (the product of its dimensions), checked.
    ///
    /// - Parameter operation: the operation named in the error.
    /// - Throws: ``TensorError/invalidShape(operation:shape:reason:)`` for a negative dimension;
    ///   ``TensorError/shapeTooLarge(operation:shape:)`` when the product of the non-zero dimensions
    ///   exceeds ``maximumElementCount`` (it would overflow a 64-bit count or byte size).
    public static func elementCount(_ shape: [Int], operation: String) throws -> Int {
        var nonZeroProduct = 1
        var hasZero = false
        for (axis, dimension) in shape.enumerated() {
            if dimension == 0 { hasZero = true; continue }
            guard dimension > 0 else {
                throw TensorError.invalidShape(operation: operation, shape: shape,
                                               reason: "dimension \(axis) is \(dimension); dimensions must be >= 0")
            }
            let (product, overflow) = nonZeroProduct.multipliedReportingOverflow(by: dimension)
            guard !overflow, product <= maximumElementCount else {
                throw TensorError.shapeTooLarge(operation: operation, shape: shape)
            }
            nonZeroProduct = product
        }
        return hasZero ? 0 : nonZeroProduct
    }

    /// Whether `shape` satisfies the shape invariant (no throw, no trap).
    public static func isValid(_ shape: [Int]) -> Bool {
        (try? elementCount(shape, operation: "")) != nil
    }

    /// The product of dimensions taken from a tensor's (valid) shape: part of it, or all of it.
    ///
    /// Internal invariant, not a check: the dimensions come from a shape that passed
    /// ``elementCount(_:operation:)``, so no partial product overflows.
    @inlinable
    static func product<C: Collection>(_ dimensions: C) -> Int where C.Element == Int {
        var p = 1
        for d in dimensions { p *= d }
        return p
    }
}
