// How a tensor prints: its shape and dtype, then the values nested like NumPy's, with the middle of long
// dimensions elided ("...") once the tensor has more than 1000 elements.

extension Tensor: CustomStringConvertible, CustomDebugStringConvertible {
    /// Elements beyond which printing elides the middle of each dimension, as NumPy's `threshold`.
    public static let printThreshold = 1000
    /// Elements shown at each end of an elided dimension, as NumPy's `edgeitems`.
    public static let printEdgeItems = 3

    /// `Tensor(shape: [2, 3], dtype: float32)` followed by the values.
    public var description: String {
        "Tensor(shape: \(shape), dtype: \(dtype))\n" + formattedValues
    }

    public var debugDescription: String { description }

    /// The values, nested by dimension.
    public var formattedValues: String {
        let elide = scalarCount > Tensor.printThreshold
        let values = doubles
        // int64 prints from the integers themselves: a `Double` loses digits beyond 2^53 and traps on
        // `Int64(Double(Int64.max))`.
        let integers = dtype == .int64 ? Array(UnsafeBufferPointer(start: _pointer(Int64.self), count: scalarCount)) : []
        func format(_ i: Int) -> String {
            switch dtype {
            case .int64: return String(integers[i])
            case .float32: return Float(values[i]).description
            case .float64: return values[i].description
            }
        }
        var strides = [Int](repeating: 1, count: rank)
        if rank >= 2 { for i in stride(from: rank - 2, through: 0, by: -1) { strides[i] = strides[i + 1] * shape[i + 1] } }
        func render(_ axis: Int, _ offset: Int, _ indent: String) -> String {
            if axis == rank { return format(offset) }
            let n = shape[axis]
            var positions = Array(0..<n)
            let edge = Tensor.printEdgeItems
            var gapAt: Int?
            if elide && n > 2 * edge {
                positions = Array(0..<edge) + Array((n - edge)..<n)
                gapAt = edge
            }
            let separator = axis == rank - 1 ? ", " : "," + String(repeating: "\n", count: rank - axis - 1) + indent + " "
            var parts: [String] = []
            for (i, p) in positions.enumerated() {
                if i == gapAt { parts.append("...") }
                parts.append(render(axis + 1, offset + p * strides[axis], indent + " "))
            }
            return "[" + parts.joined(separator: separator) + "]"
        }
        return render(0, 0, "")
    }
}
