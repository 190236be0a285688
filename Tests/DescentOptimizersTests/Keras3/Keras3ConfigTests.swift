@testable @_spi(DescentInternals) import DescentOptimizers
import Foundation
import Testing

/// Keras 3.15.1's serialized configs (Tests/Fixtures/keras3_configs, scripts/golden/generate_keras3_configs.py):
/// each deserializes to the Keras 3 class and serializes back to the same bytes; default constructions give
/// Keras' `get_config`.
@Suite struct Keras3ConfigTests {
    static let cases = ((try? Fixtures.names(in: "keras3_configs")) ?? []).filter { $0 != "get_config_defaults" }

    @Test func fixturesArePresent() { #expect(Self.cases.count >= 80) }

    @Test(arguments: cases)
    func roundTripsByteForByte(_ name: String) throws {
        let fixture = try #require(try Fixtures.load("keras3_configs/\(name).json").objectValue)
        let json = try #require(fixture["json"]?.stringValue)
        switch fixture["kind"]?.stringValue {
        case "optimizer":
            let optimizer = try Optimizer.deserialize(json: json)
            #expect(optimizer is Keras3.Optimizer)
            #expect(try optimizer.serializedJSON() == json)
        case "schedule":
            let object = try #require(try JSONValue(parsing: json).objectValue)
            #expect(JSONValue.object(try serializeSchedule(try deserializeSchedule(object))).serialized == json)
        case "constraint":
            let constraint = try #require(try Constraints.deserialize(try JSONValue(parsing: json)) as? any KerasConstraint)
            #expect(JSONValue.object(constraint.serialize()).serialized == json)
        default:
            Issue.record("unknown kind \(fixture["kind"]?.serialized ?? "nil")")
        }
    }

    /// `Class()`'s config in Keras equals the config of the Swift class built with its defaults (names aside:
    /// both number unnamed optimizers per process).
    @Test func defaultsAreKeras3s() throws {
        let fixture = try #require(try Fixtures.load("keras3_configs/get_config_defaults.json").objectValue)
        let classes = try #require(fixture["classes"]?.objectValue)
        var checked = 0
        for (className, entry) in classes.entries {
            guard var want = entry.objectValue?["get_config"]?.objectValue else { continue }
            guard let factory = Keras3.builtInFactories[className.lowercased()] else {
                Issue.record("no Keras 3 class \(className)")
                continue
            }
            // Wrappers need inner optimizers: their defaults are covered by the round trips.
            if want["inner_optimizer"] != nil || want["optimizer_map"] != nil { continue }
            var got = try factory(JSONObject(), .none).config
            got["name"] = nil
            want["name"] = nil
            #expect(got == want, "\(className): \(JSONValue.object(got).serialized) vs \(JSONValue.object(want).serialized)")
            checked += 1
        }
        #expect(checked >= 14)
    }
}
