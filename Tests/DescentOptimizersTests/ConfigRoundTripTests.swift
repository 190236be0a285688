import DescentOptimizers
import DescentTensor
import Testing

/// Python-written JSON → Swift → JSON must equal the Python JSON (Tests/Fixtures/configs).
@Suite struct ConfigRoundTripTests {
    static let kinds: [String: String] = {
        guard let entries = (try? Fixtures.load("configs/INDEX.json"))?.objectValue?["entries"]?.arrayValue else { return [:] }
        var kinds: [String: String] = [:]
        for e in entries {
            if let name = e.objectValue?["name"]?.stringValue, let kind = e.objectValue?["kind"]?.stringValue { kinds[name] = kind }
        }
        return kinds
    }()

    @Test func fixturesArePresent() { #expect(Fixtures.configCases.count >= 70) }

    @Test(arguments: Fixtures.configCases)
    func roundTrips(_ name: String) throws {
        let fixture = try #require(try Fixtures.load("configs/\(name).json").objectValue)
        let python = try #require(fixture["python_json"]?.stringValue)
        let object = try #require(try JSONValue(parsing: python).objectValue)
        #expect(fixture["object"]?.objectValue == object)
        let legacy = object["module"] == nil
        let written: String
        switch Self.kinds[name] {
        case "optimizer":
            written = try Optimizer.deserialize(object).serialize(legacyFormat: legacy).serialized
        case "schedule":
            written = try serializeSchedule(try deserializeSchedule(object), legacyFormat: legacy).serialized
        case "constraint":
            let constraint = try #require(try Constraints.deserialize(.object(object)) as? any KerasConstraint)
            written = constraint.serialize().serialized
        default:
            Issue.record("unknown kind for \(name)")
            return
        }
        #expect(written == python)
    }

    @Test func jsonNumbersKeepTheirForm() throws {
        let text = #"{"a": 1, "b": 1.0, "c": 1e-07, "d": 0.10000000149011612, "e": [true, null, "x\"y"], "f": -2.5e+20}"#
        #expect(try JSONValue(parsing: text).serialized == text)
    }

    @Test func malformedJSONNamesThePosition() {
        let error = #expect(throws: JSONError.self) { try JSONValue(parsing: "{\"a\": [1, 2,, 3]}") }
        #expect(error?.message.contains("line 1, column 13") == true)
        #expect(throws: JSONError.self) { try JSONValue(parsing: "{\"a\": 1} extra") }
        #expect(throws: JSONError.self) { try JSONValue(parsing: "\"unterminated") }
    }
}
