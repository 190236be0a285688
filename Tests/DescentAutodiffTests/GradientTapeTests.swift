import Glibc
import DescentAutodiff
import DescentTensor
import Dispatch
import Testing

@Suite struct GradientTapeTests {
    /// The seed's first example: loss = 3·v1² + 2·v2², gradients 6·v1 and 4·v2.
    @Test func seedExample() throws {
        let var1 = Variable(Tensor([1.5, -2] as [Float]), name: "var1")
        let var2 = Variable(Tensor([0.5, 3] as [Float]), name: "var2")
        let tape = GradientTape()
        let loss = try tape.record { try 3 * var1 * var1 + 2 * var2 * var2 }
        let grads = try tape.gradient(of: loss, wrt: [var1, var2])
        #expect(try grads[0]?.denseValue.scalars(as: Float.self) == [9, -12])
        #expect(try grads[1]?.denseValue.scalars(as: Float.self) == [2, 12])
        #expect(tape.watchedVariables.map(\.name) == ["var1", "var2"])
    }

    @Test func repeatedReadsAccumulate() throws {
        let v = Variable(Tensor(Double(3)), name: "v")
        let tape = GradientTape()
        let y = try tape.record { try v * v + v.value.exp() }
        let g = try #require(try tape.gradient(of: y, wrt: v))
        expectNear(try g.denseValue.item(), 2 * 3 + Foundation_exp(3))
    }

    @Test func nonTrainableVariablesAreNotWatchedUnlessAsked() throws {
        let frozen = Variable(Tensor(Float(2)), name: "frozen", trainable: false)
        let tape = GradientTape(persistent: true)
        let y = try tape.record { try frozen * frozen }
        #expect(try tape.gradient(of: y, wrt: frozen) == nil)

        let tape2 = GradientTape()
        tape2.watch(frozen)
        let y2 = try tape2.record { try frozen * frozen }
        #expect(try tape2.gradient(of: y2, wrt: frozen)?.denseValue.item() == 4)
    }

    @Test func watchAccessedVariablesFalse() throws {
        let a = Variable(Tensor(Float(2)), name: "a"), b = Variable(Tensor(Float(5)), name: "b")
        let tape = GradientTape(watchAccessedVariables: false)
        tape.watch(b)
        let y = try tape.record { try a * b }
        let grads = try tape.gradient(of: y, wrt: [a, b])
        #expect(grads[0] == nil)
        #expect(try grads[1]?.denseValue.item() == 2)
        #expect(tape.watchedVariables.map(\.name) == ["b"])
    }

    @Test func nonPersistentTapeCanBeUsedOnce() throws {
        let v = Variable(Tensor(Float(1)))
        let tape = GradientTape()
        let y = try tape.record { try v * 2 }
        _ = try tape.gradient(of: y, wrt: v)
        #expect(throws: AutodiffError.tapeAlreadyUsed) { try tape.gradient(of: y, wrt: v) }
        #expect(AutodiffError.tapeAlreadyUsed.description.contains("persistent: true"))
    }

    @Test func persistentTapeAnswersSeveralQuestions() throws {
        let x = Variable(Tensor(Double(3)), name: "x")
        let tape = GradientTape(persistent: true)
        let (y, z) = try tape.record { () throws -> (Tensor, Tensor) in
            let y = try x * x
            return (y, try y * y)
        }
        #expect(try tape.gradient(of: y, wrt: x)?.denseValue.item() == 6)
        #expect(try tape.gradient(of: z, wrt: x)?.denseValue.item() == 108)
        #expect(try tape.gradient(of: z, wrt: x)?.denseValue.item() == 108)
    }

    @Test func outputGradientsScaleTheUpstreamGradient() throws {
        let v = Variable(Tensor([1, 2] as [Float]))
        let tape = GradientTape(persistent: true)
        let y = try tape.record { try v * v }
        let g = try tape.gradient(of: y, wrt: v, outputGradients: Tensor([2, 3] as [Float]))
        #expect(try g?.denseValue.scalars(as: Float.self) == [4, 12])
        let error = #expect(throws: AutodiffError.self) {
            try tape.gradient(of: y, wrt: v, outputGradients: Tensor([1, 2, 3] as [Float]))
        }
        #expect(error?.description.contains("[3]") == true)
        #expect(error?.description.contains("[2]") == true)
    }

    @Test func unconnectedSources() throws {
        let a = Variable(Tensor([1, 2] as [Float]), name: "a"), b = Variable(Tensor([3] as [Float]), name: "b")
        let tape = GradientTape(persistent: true)
        let y = try tape.record { try (a * a).sum() }
        #expect(try tape.gradient(of: y, wrt: [a, b])[1] == nil)
        let zero = try tape.gradient(of: y, wrt: [a, b], unconnected: .zero)[1]
        #expect(try zero?.denseValue.scalars(as: Float.self) == [0])
        // A target computed outside the tape has no gradient at all.
        let outside = try a * a
        #expect(try tape.gradient(of: outside, wrt: a) == nil)
    }

    @Test func valuesReadBeforeRecordingAreConstants() throws {
        let v = Variable(Tensor(Float(2)))
        let before = v.value
        let tape = GradientTape()
        let y = try tape.record { try before * v }
        #expect(try tape.gradient(of: y, wrt: v)?.denseValue.item() == 2)
    }

    @Test func watchedTensors() throws {
        let tape = GradientTape()
        let x = tape.watch(Tensor([1, 2, 3] as [Double]))
        let y = try tape.record { try x.squared().sum() }
        #expect(try tape.gradient(of: y, wrt: x)?.denseValue.scalars(as: Double.self) == [2, 4, 6])
    }

    @Test func gradientWithRespectToAnIntermediateTensor() throws {
        let v = Variable(Tensor(Double(2)))
        let tape = GradientTape(persistent: true)
        let (h, y) = try tape.record { () throws -> (Tensor, Tensor) in
            let h = try v * 3
            return (h, try h * h)
        }
        #expect(try tape.gradient(of: y, wrt: h)?.denseValue.item() == 12)
        #expect(try tape.gradient(of: y, wrt: [h.untracked])[0] == nil)
        #expect(try tape.gradient(of: y, wrt: v)?.denseValue.item() == 36)
    }

    @Test func stopRecordingExcludesOperations() throws {
        let v = Variable(Tensor(Float(3)))
        let tape = GradientTape()
        let y = try tape.record { () throws -> Tensor in
            let constant = try tape.stopRecording { try v * v }
            return try constant * v
        }
        #expect(try tape.gradient(of: y, wrt: v)?.denseValue.item() == 9)
    }

    @Test func stoppingGradient() throws {
        let v = Variable(Tensor(Float(3)))
        let tape = GradientTape()
        let y = try tape.record { try v.value.stoppingGradient() * v }
        #expect(try tape.gradient(of: y, wrt: v)?.denseValue.item() == 3)
    }

    @Test func nestedTapesGiveSecondDerivatives() throws {
        let x = Variable(Tensor(Double(2)), name: "x")
        let outer = GradientTape()
        let firstDerivative = try outer.record { () throws -> Tensor in
            let inner = GradientTape()
            let y = try inner.record { try x * x * x }
            return try #require(try inner.gradient(of: y, wrt: x)).denseValue
        }
        #expect(try firstDerivative.item() == 12)  // 3x²
        #expect(try outer.gradient(of: firstDerivative, wrt: x)?.denseValue.item() == 12)  // 6x
    }

    @Test func integerTargetsAreRejected() throws {
        let tape = GradientTape()
        let t = tape.watch(Tensor([1, 2] as [Int64]))
        #expect(throws: AutodiffError.nonDifferentiableTarget(.int64)) { try tape.gradient(of: t, wrt: t) }
    }

    @Test func resetForgetsTheRecord() throws {
        let v = Variable(Tensor(Float(3)))
        let tape = GradientTape(persistent: true)
        let y = try tape.record { try v * v }
        tape.reset()
        #expect(try tape.gradient(of: y, wrt: v) == nil)
        #expect(tape.watchedVariables.isEmpty)
    }

    @Test func recordingIsScopedToTheRecordBlock() throws {
        let v = Variable(Tensor(Float(3)))
        let tape = GradientTape(persistent: true)
        _ = try tape.record { try v * v }
        let after = try v * v  // outside: not recorded
        #expect(try tape.gradient(of: after, wrt: v) == nil)
    }
}

@Suite struct VariableTests {
    @Test func assignChecksShapeAndDtypeAndNamesTheVariable() throws {
        let v = Variable(Tensor([1, 2] as [Float]), name: "dense/bias")
        try v.assign(Tensor([3, 4] as [Float]))
        #expect(try v.untrackedValue.scalars(as: Float.self) == [3, 4])
        let shapeError = #expect(throws: TensorError.self) { try v.assign(Tensor([1, 2, 3] as [Float])) }
        #expect(shapeError?.description.contains("dense/bias") == true)
        #expect(shapeError?.description.contains("[2]") == true)
        #expect(shapeError?.description.contains("[3]") == true)
        let dtypeError = #expect(throws: TensorError.self) { try v.assign(Tensor([1, 2] as [Double])) }
        #expect(dtypeError?.description.contains("dense/bias") == true)
        #expect(dtypeError?.description.contains("float64") == true)
        #expect(throws: TensorError.self) { try v.assignAdd(Tensor([1] as [Float])) }
        #expect(throws: TensorError.self) { try v.assignSub(Tensor([1] as [Float])) }
    }

    @Test func assignAddAndSub() throws {
        let v = Variable(Tensor([1, 2] as [Double]), name: "v")
        try v.assignAdd(Tensor([0.5, 0.5] as [Double]))
        try v.assignSub(Tensor([1, 1] as [Double]))
        #expect(try v.untrackedValue.scalars(as: Double.self) == [0.5, 1.5])
    }

    @Test func valuesReadEarlierKeepTheirValues() throws {
        let v = Variable(Tensor([1, 2] as [Float]))
        let snapshot = v.value
        try v.assign(Tensor([5, 6] as [Float]))
        #expect(try snapshot.scalars(as: Float.self) == [1, 2])
    }

    @Test func constraintIsStored() throws {
        let v = Variable(Tensor([-1, 2] as [Float]), constraint: ClosureConstraint { try $0.maximum(0) })
        let constrained = try #require(v.constraint).apply(to: v.untrackedValue)
        #expect(try constrained.scalars(as: Float.self) == [0, 2])
        v.constraint = nil
        #expect(v.constraint == nil)
    }

    @Test func description() {
        let v = Variable(Tensor([1, 2] as [Float]), name: "w")
        #expect(v.description == "Variable 'w' shape: [2] dtype: float32\n[1.0, 2.0]")
    }

    @Test func concurrentReadsAndAssignsAreSafe() throws {
        let v = Variable(try Tensor.zeros(shape: [64]), name: "shared")
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            for i in 0..<200 {
                if worker % 2 == 0 {
                    try! v.assign(Tensor(repeating: Double(i), shape: [64]))
                } else {
                    let values = try! v.untrackedValue.scalars(as: Float.self)
                    // Each read sees one whole assignment, never a mix.
                    precondition(Set(values).count == 1)
                }
            }
        }
        #expect(v.untrackedValue.scalarCount == 64)
    }
}

func expectNear(_ a: Double, _ b: Double, tolerance: Double = 1e-12, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(abs(a - b) <= tolerance * max(1, abs(b)), "\(a) vs \(b)", sourceLocation: sourceLocation)
}

func Foundation_exp(_ x: Double) -> Double { Glibc.exp(x) }
