extension RandomAccessCollection where Element: Comparable, Index == Int {
    /// The index of the first element not less than `value`, in a collection sorted ascending
    /// (`endIndex` when every element is less). Binary search.
    @_spi(DescentInternals) @inlinable
    public func lowerBound(of value: Element) -> Int {
        var lo = startIndex, hi = endIndex
        while lo < hi {
            let mid = lo + (hi - lo) / 2
            if self[mid] < value { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    /// Whether a collection sorted ascending contains `value`. Binary search.
    @_spi(DescentInternals) @inlinable
    public func sortedContains(_ value: Element) -> Bool {
        let i = lowerBound(of: value)
        return i < endIndex && self[i] == value
    }
}
