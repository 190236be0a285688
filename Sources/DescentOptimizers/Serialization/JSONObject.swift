/// A JSON object that keeps its keys in insertion order (as Python dicts do), with constant-time lookup.
///
/// Small objects (configs have a dozen keys) are searched linearly; from ``indexThreshold`` entries on,
/// a key → position index is kept, so building or reading an object of n keys takes O(n) time (a parsed
/// document with 100,000 keys in one object is read in linear time). Assigning to an existing key
/// replaces its value in place and keeps its position, as a Python dict does (and as Python's
/// `json.loads` does for a duplicate key: the last value, at the first key's position).
public struct JSONObject: Sendable, Equatable, Sequence, ExpressibleByDictionaryLiteral {
    /// The key-value pairs, in order.
    public private(set) var entries: [(key: String, value: JSONValue)] = []
    /// Position of each key in `entries`; `nil` while the object has fewer than `indexThreshold` entries.
    private var index: [String: Int]? = nil

    /// From this many entries on, lookups go through a hash index instead of a linear search.
    static let indexThreshold = 16

    /// An empty object.
    public init() {}

    /// An object from ordered pairs (a later duplicate key replaces the earlier value in place).
    public init(_ pairs: [(String, JSONValue)]) {
        entries.reserveCapacity(pairs.count)
        for (k, v) in pairs { self[k] = v }
    }

    public init(dictionaryLiteral elements: (String, JSONValue)...) { self.init(elements) }

    /// The position of `key` in ``entries``.
    private func position(of key: String) -> Int? {
        if index != nil { return index![key] }
        return entries.firstIndex(where: { $0.key == key })
    }

    /// The value for `key`, or `nil`; assigning `nil` removes the key.
    public subscript(key: String) -> JSONValue? {
        get { position(of: key).map { entries[$0].value } }
        set {
            guard let newValue else {
                if let i = position(of: key) { remove(at: i) }
                return
            }
            if index != nil {
                // One hash lookup for a new key (the common case when parsing): claim the next position,
                // and put the old position back if the key was already there.
                let n = entries.count
                if let old = index!.updateValue(n, forKey: key) {
                    index![key] = old
                    entries[old].value = newValue
                } else {
                    entries.append((key, newValue))
                }
            } else if let i = entries.firstIndex(where: { $0.key == key }) {
                entries[i].value = newValue
            } else {
                append(key, newValue)
            }
        }
    }

    /// Appends a key known not to be present, to an object without an index yet.
    private mutating func append(_ key: String, _ value: JSONValue) {
        entries.append((key, value))
        if entries.count >= Self.indexThreshold {
            var built: [String: Int] = [:]
            built.reserveCapacity(entries.count * 2)
            for (i, e) in entries.enumerated() { built[e.key] = i }
            index = built
        }
    }

    @discardableResult
    private mutating func remove(at i: Int) -> JSONValue {
        let removed = entries.remove(at: i)
        if index != nil {
            index![removed.key] = nil
            for j in i..<entries.count { index![entries[j].key] = j }
        }
        return removed.value
    }

    /// Reserves room for `n` entries (the parser, when it knows the count).
    mutating func reserveCapacity(_ n: Int) { entries.reserveCapacity(n) }

    /// The keys, in order.
    public var keys: [String] { entries.map(\.key) }

    /// The number of keys.
    public var count: Int { entries.count }

    /// Removes `key` and returns its value.
    @discardableResult
    public mutating func removeValue(forKey key: String) -> JSONValue? {
        guard let i = position(of: key) else { return nil }
        return remove(at: i)
    }

    public func makeIterator() -> IndexingIterator<[(key: String, value: JSONValue)]> { entries.makeIterator() }

    /// Equal when the same keys hold equal values in the same order.
    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        lhs.entries.count == rhs.entries.count
            && zip(lhs.entries, rhs.entries).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }

    /// The object as Python's `json.dumps` writes it.
    public var serialized: String { JSONValue.object(self).serialized }

    /// Throws unless every key is one of `allowed`, naming the first other key and `place`
    /// (e.g. `unknown key 'cfg' in optimizer document (expected class_name, config, module, registered_name)`).
    public func rejectUnknownKeys(allowed: [String], in place: String) throws {
        for key in keys where !allowed.contains(key) {
            throw JSONError("unknown key '\(key)' in \(place) (expected \(allowed.joined(separator: ", ")))")
        }
    }
}
