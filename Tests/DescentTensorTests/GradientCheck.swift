import DescentAutodiff
import DescentTensor
import Testing

/// Compares the tape's gradient of `f` at `inputs` with central finite differences, in `Double`.
///
/// The scalar checked is `sum(f(x) * w)` for fixed random weights `w`, so every output element matters.
/// Fails the current test when the norm-wise relative error exceeds `tolerance`.
func checkGradient(
    _ inputs: [Tensor], tolerance: Double = 1e-6, step: Double = 1e-5,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ f: ([Tensor]) throws -> Tensor
) throws {
    precondition(inputs.allSatisfy { $0.dtype == .float64 }, "gradient checks run in float64")
    let probe = try f(inputs)
    let weights = try Tensor.randomUniform(shape: probe.shape, min: 0.5, max: 1.5, dtype: .float64, seed: 42)
    func objective(_ xs: [Tensor]) throws -> Double { try (f(xs) * weights).sum().item() }

    let tape = GradientTape()
    let watched = inputs.map { tape.watch($0) }
    let loss = try tape.record { try (f(watched) * weights).sum() }
    let analytic = try tape.gradient(of: loss, wrt: watched)

    for (i, x) in inputs.enumerated() {
        let values = x.doubles
        var numeric = [Double](repeating: 0, count: values.count)
        for j in values.indices {
            var plus = values, minus = values
            plus[j] += step
            minus[j] -= step
            var xsPlus = inputs, xsMinus = inputs
            xsPlus[i] = try Tensor(shape: x.shape, scalars: plus)
            xsMinus[i] = try Tensor(shape: x.shape, scalars: minus)
            numeric[j] = (try objective(xsPlus) - objective(xsMinus)) / (2 * step)
        }
        let computed = try analytic[i]?.denseValue.doubles ?? [Double](repeating: 0, count: values.count)
        #expect(analytic[i]?.shape ?? x.shape == x.shape, "gradient \(i) has the input's shape", sourceLocation: sourceLocation)
        let diff = zip(computed, numeric).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot()
        let scale = max(computed.map { $0 * $0 }.reduce(0, +).squareRoot(), numeric.map { $0 * $0 }.reduce(0, +).squareRoot(), 1e-12)
        #expect(diff / scale <= tolerance,
                "input \(i): relative error \(diff / scale); tape \(computed.prefix(6)), numeric \(numeric.prefix(6))",
                sourceLocation: sourceLocation)
    }
}

/// A float64 tensor of the given shape with deterministic values in `[low, high)`.
func sample(_ shape: [Int], seed: UInt64 = 1, low: Double = -2, high: Double = 2) throws -> Tensor {
    try Tensor.randomUniform(shape: shape, min: low, max: high, dtype: .float64, seed: seed)
}

/// Asserts that two arrays agree elementwise within `tolerance` (absolute + relative).
func expectClose(_ a: [Double], _ b: [Double], tolerance: Double = 1e-6, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(a.count == b.count, "counts \(a.count) vs \(b.count)", sourceLocation: sourceLocation)
    for (i, (x, y)) in zip(a, b).enumerated() where !(abs(x - y) <= tolerance * max(1, abs(y))) {
        Issue.record("element \(i): \(x) vs \(y)", sourceLocation: sourceLocation)
        return
    }
}
