// Matrix multiplication through OpenBLAS (`cblas_sgemm` / `cblas_dgemm`). Transposes are passed to BLAS as
// flags, never materialised. Batched operands call BLAS once per batch element, or once in total when one
// operand is a plain matrix and the other's batch can be folded into its rows.

extension Tensor {
    /// Matrix product of the last two dimensions (`tf.linalg.matmul`), optionally transposing either
    /// operand. Leading (batch) dimensions must be equal, or one operand must be a plain matrix.
    ///
    /// - Throws: ``TensorError/incompatibleShapes(operation:lhs:rhs:reason:)`` naming both shapes when the
    ///   inner dimensions or batch dimensions disagree.
    public func matmul(_ other: Tensor, transposeA: Bool = false, transposeB: Bool = false) throws -> Tensor {
        let a = self, b = other
        let name = "matmul"
        guard a.dtype == b.dtype else { throw TensorError.dtypeMismatch(operation: name, lhs: a.dtype, rhs: b.dtype) }
        guard a.dtype.isFloatingPoint else { throw TensorError.unsupportedDType(operation: name, dtype: a.dtype) }
        guard a.rank >= 2, b.rank >= 2 else {
            throw TensorError.incompatibleShapes(operation: name, lhs: a.shape, rhs: b.shape,
                                                 reason: "both operands need rank >= 2")
        }
        let (ar, ac) = (a.shape[a.rank - 2], a.shape[a.rank - 1])
        let (br, bc) = (b.shape[b.rank - 2], b.shape[b.rank - 1])
        let (m, k) = transposeA ? (ac, ar) : (ar, ac)
        let (k2, n) = transposeB ? (bc, br) : (br, bc)
        guard k == k2 else {
            throw TensorError.incompatibleShapes(
                operation: name, lhs: a.shape, rhs: b.shape,
                reason: "inner dimensions \(k) and \(k2) differ\(transposeA || transposeB ? " (transposeA: \(transposeA), transposeB: \(transposeB))" : "")")
        }
        let aBatch = Array(a.shape.dropLast(2)), bBatch = Array(b.shape.dropLast(2))
        let batch: [Int]
        if aBatch == bBatch || bBatch.isEmpty { batch = aBatch } else if aBatch.isEmpty { batch = bBatch } else {
            throw TensorError.incompatibleShapes(operation: name, lhs: a.shape, rhs: b.shape,
                                                 reason: "batch dimensions \(aBatch) and \(bBatch) differ")
        }
        let batchCount = Shape.product(batch)  // an operand's batch dimensions
        let filled = m > 0 && n > 0 && k > 0 && batchCount > 0
        // With beta = 0, GEMM writes every element of C without reading it: no zero-filling needed.
        let out = try Tensor(uninitializedShape: batch + [m, n], dtype: a.dtype, operation: name)
        if !filled { out.storage.zeroFill() }
        if filled {
            func run<T: FloatingElement>(_: T.Type) {
                let pa = a._pointer(T.self), pb = b._pointer(T.self), pc = out._mutablePointer(T.self)
                let lda = ac, ldb = bc
                if bBatch.isEmpty && !transposeA {
                    // Fold a's batch into its rows: one call.
                    T.gemm(transposeA: false, transposeB: transposeB, m: m * batchCount, n: n, k: k, alpha: 1,
                           a: pa, lda: lda, b: pb, ldb: ldb, beta: 0, c: pc, ldc: n)
                    return
                }
                let aStride = aBatch.isEmpty ? 0 : ar * ac, bStride = bBatch.isEmpty ? 0 : br * bc
                for i in 0..<batchCount {
                    T.gemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: 1,
                           a: pa + i * aStride, lda: lda, b: pb + i * bStride, ldb: ldb, beta: 0,
                           c: pc + i * m * n, ldc: n)
                }
            }
            withExtendedLifetime((a, b)) {
                if a.dtype == .float32 { run(Float.self) } else { run(Double.self) }
            }
        }
        return Autodiff.recordBinary(name, a, b, out, backward: { g in
            // TensorFlow's _MatMulGrad / _BatchMatMulV2Grad, then batch broadcasting summed away. An operand
            // no tape tracks (tapeNode 0, e.g. a layer's input batch) gets no gradient: its product is skipped.
            var ga: Tensor?, gb: Tensor?
            let needA = a.tapeNode != 0, needB = b.tapeNode != 0
            switch (transposeA, transposeB) {
            case (false, false):
                if needA { ga = try g.matmul(b, transposeB: true) }
                if needB { gb = try a.matmul(g, transposeA: true) }
            case (false, true):
                if needA { ga = try g.matmul(b) }
                if needB { gb = try g.matmul(a, transposeA: true) }
            case (true, false):
                if needA { ga = try b.matmul(g, transposeB: true) }
                if needB { gb = try a.matmul(g) }
            case (true, true):
                if needA { ga = try b.matmul(g, transposeA: true, transposeB: true) }
                if needB { gb = try g.matmul(a, transposeA: true, transposeB: true) }
            }
            return [try ga.map { .dense(try $0.sumToShape(a.shape)) }, try gb.map { .dense(try $0.sumToShape(b.shape)) }]
        })
    }
}

/// Matrix product (`tf.linalg.matmul`); see ``Tensor/matmul(_:transposeA:transposeB:)``.
public func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) throws -> Tensor {
    try a.matmul(b, transposeA: transposeA, transposeB: transposeB)
}
