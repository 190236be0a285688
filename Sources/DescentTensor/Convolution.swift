// Convolutions of channels-last tensors (TensorFlow's `tf.nn.conv2d` / `tf.nn.conv1d`, NHWC / NWC inputs,
// HWIO / WIO kernels), as one im2col pass and one OpenBLAS GEMM; the gradients as two GEMMs and a col2im
// pass. A 1-D convolution is the 2-D one of height 1.

/// Two sizes of a 2-D window or step, height first (Keras' `kernel_size=(3, 5)`, `strides=2`).
///
/// An integer literal gives both: `kernelSize: 3` is `Size2D(3, 3)`, as Keras' `kernel_size=3`.
public struct Size2D: Sendable, Equatable, Hashable, CustomStringConvertible, ExpressibleByIntegerLiteral {
    /// Along the rows (axis 1 of an NHWC tensor).
    public var height: Int
    /// Along the columns (axis 2).
    public var width: Int

    /// `height × width`.
    public init(_ height: Int, _ width: Int) {
        self.height = height
        self.width = width
    }

    /// `size × size`.
    public init(_ size: Int) { self.init(size, size) }

    /// `value × value`.
    public init(integerLiteral value: Int) { self.init(value, value) }

    /// `(height, width)`, as Keras prints a tuple.
    public var description: String { "(\(height), \(width))" }
}

/// How a convolution or pooling window treats the input's borders (TensorFlow's `padding`).
public enum Padding: String, Sendable, CaseIterable {
    /// No padding: windows lie inside the input; an axis of length `L` gives
    /// `ceil((L − (k − 1)·d) / s)` outputs (kernel `k`, dilation `d`, stride `s`).
    case valid
    /// Zero padding so that an axis of length `L` gives `ceil(L / s)` outputs. The padding is
    /// `max((out − 1)·s + (k − 1)·d + 1 − L, 0)` in all, `⌊total / 2⌋` before and the rest after (the extra
    /// element at the bottom/right), as TensorFlow.
    case same
    /// 1-D only: `(k − 1)·d` zeros before the steps and none after, so output `t` sees inputs `≤ t`
    /// (Keras' `Conv1D(padding="causal")`); `ceil(L / s)` outputs.
    case causal
}

/// The sizes of one spatial axis of a convolution or pooling: the output length and the padding before it.
@usableFromInline
struct WindowAxis: Sendable {
    let input: Int, window: Int, stride: Int, dilation: Int
    let output: Int, padBefore: Int

    /// - Throws: ``TensorError/invalidArgument(operation:reason:)`` when the output would be empty.
    init(input: Int, window: Int, stride: Int, dilation: Int, padding: Padding, operation: String, axis: String) throws {
        let span = (window - 1) * dilation + 1
        var pad = 0, out: Int
        switch padding {
        case .valid:
            out = input >= span ? (input - span) / stride + 1 : 0
        case .same:
            out = (input + stride - 1) / stride
            pad = Swift.max((out - 1) * stride + span - input, 0) / 2
        case .causal:
            out = (input + stride - 1) / stride
            pad = span - 1
        }
        guard out > 0 else {
            throw TensorError.invalidArgument(
                operation: operation,
                reason: "the \(axis) of \(input) is too small for a window of \(window)\(dilation > 1 ? " dilated by \(dilation) (span \(span))" : "") with \(padding.rawValue) padding: the output would be empty")
        }
        self.input = input
        self.window = window
        self.stride = stride
        self.dilation = dilation
        self.output = out
        self.padBefore = pad
    }
}

/// The geometry of one convolution: NHWC input, `[kh, kw, c, f]` kernel, NHWC output.
@usableFromInline
struct ConvGeometry: Sendable {
    let batch: Int, channels: Int, filters: Int
    let rows: WindowAxis, cols: WindowAxis

    /// Elements of one im2col row (one receptive field): `kh · kw · c`.
    var patch: Int { rows.window * cols.window * channels }
    /// Output positions: `n · oh · ow` (the GEMM's `m`).
    var positions: Int { batch * rows.output * cols.output }
    var outputShape2D: [Int] { [batch, rows.output, cols.output, filters] }
    /// Whether the input already is the im2col matrix (a 1×1 kernel, stride 1, no padding).
    var isPointwise: Bool {
        rows.window == 1 && cols.window == 1 && rows.stride == 1 && cols.stride == 1 && rows.padBefore == 0 && cols.padBefore == 0
    }
}

extension Tensor {
    /// Checks the positivity of window arguments.
    static func requirePositive(_ values: [(String, Int)], operation: String) throws {
        for (name, v) in values where v <= 0 {
            throw TensorError.invalidArgument(operation: operation, reason: "\(name) must be positive, got \(v)")
        }
    }

    /// The 2-D convolution (cross-correlation) of an NHWC input with an HWIO kernel (`tf.nn.conv2d`
    /// with `data_format="NHWC"`):
    ///
    /// `out[n, i, j, f] = Σ_{a, b, c} x[n, i·sh − pt + a·dh, j·sw − pl + b·dw, c] · kernel[a, b, c, f]`,
    ///
    /// where positions outside the input count as 0 and `pt`, `pl` are the padding before the rows and
    /// columns (see ``Padding``). Output shape `[n, oh, ow, f]`.
    ///
    /// Computed as one im2col pass into a `[n·oh·ow, kh·kw·c]` matrix and one GEMM with the kernel
    /// (`[kh·kw·c, f]` in memory); a 1×1 kernel with stride 1 multiplies the input directly. The
    /// gradients (TensorFlow's `Conv2DBackpropInput` / `Conv2DBackpropFilter`) are
    /// `dkernel = colsᵀ · g` and `dx = col2im(g · kernelᵀ)`; each is computed only for an operand a tape
    /// tracks. The gradient is not itself recorded (no second-order gradients through a convolution).
    ///
    /// - Parameters:
    ///   - strides: the step between windows (positive).
    ///   - padding: `.valid` or `.same` (`.causal` is for ``conv1d(_:stride:padding:dilation:)``).
    ///   - dilations: the spacing of kernel taps (positive); Keras refuses strides > 1 with dilations > 1,
    ///     this op (like `tf.nn.conv2d` on CPU) accepts them.
    /// - Throws: ``TensorError`` for a non-floating or mismatched dtype, an input that is not rank 4, a
    ///   kernel that is not rank 4 or whose input channels differ from the input's, a non-positive size,
    ///   causal padding, or an input too small for the window (empty output).
    public func conv2d(_ kernel: Tensor, strides: Size2D = 1, padding: Padding = .valid, dilations: Size2D = 1) throws -> Tensor {
        let name = "conv2d"
        try Tensor.checkConvOperands(self, kernel, rank: 4, operation: name)
        guard padding != .causal else {
            throw TensorError.invalidArgument(operation: name, reason: "causal padding is only for 1-D convolutions (conv1d)")
        }
        try Tensor.requirePositive([("strides.height", strides.height), ("strides.width", strides.width),
                                    ("dilations.height", dilations.height), ("dilations.width", dilations.width)], operation: name)
        let g = ConvGeometry(
            batch: shape[0], channels: shape[3], filters: kernel.shape[3],
            rows: try WindowAxis(input: shape[1], window: kernel.shape[0], stride: strides.height, dilation: dilations.height,
                                 padding: padding, operation: name, axis: "height"),
            cols: try WindowAxis(input: shape[2], window: kernel.shape[1], stride: strides.width, dilation: dilations.width,
                                 padding: padding, operation: name, axis: "width"))
        return try Tensor.convolve(self, kernel, g, outputShape: g.outputShape2D, operation: name)
    }

    /// The 1-D convolution of an NWC input `[n, steps, c]` with a `[k, c, f]` kernel (`tf.nn.conv1d`;
    /// Keras' `Conv1D`): ``conv2d(_:strides:padding:dilations:)`` of height 1. `.causal` padding puts
    /// `(k − 1)·dilation` zeros before the steps. Output shape `[n, out, f]`.
    /// - Throws: as ``conv2d(_:strides:padding:dilations:)``, for rank-3 operands.
    public func conv1d(_ kernel: Tensor, stride: Int = 1, padding: Padding = .valid, dilation: Int = 1) throws -> Tensor {
        let name = "conv1d"
        try Tensor.checkConvOperands(self, kernel, rank: 3, operation: name)
        try Tensor.requirePositive([("stride", stride), ("dilation", dilation)], operation: name)
        let g = ConvGeometry(
            batch: shape[0], channels: shape[2], filters: kernel.shape[2],
            rows: try WindowAxis(input: 1, window: 1, stride: 1, dilation: 1, padding: .valid, operation: name, axis: "height"),
            cols: try WindowAxis(input: shape[1], window: kernel.shape[0], stride: stride, dilation: dilation,
                                 padding: padding, operation: name, axis: "steps"))
        return try Tensor.convolve(self, kernel, g, outputShape: [g.batch, g.cols.output, g.filters], operation: name)
    }

    static func checkConvOperands(_ x: Tensor, _ kernel: Tensor, rank: Int, operation: String) throws {
        guard x.dtype == kernel.dtype else { throw TensorError.dtypeMismatch(operation: operation, lhs: x.dtype, rhs: kernel.dtype) }
        guard x.dtype.isFloatingPoint else { throw TensorError.unsupportedDType(operation: operation, dtype: x.dtype) }
        let layout = rank == 4 ? "[batch, height, width, channels]" : "[batch, steps, channels]"
        let kernelLayout = rank == 4 ? "[height, width, inChannels, filters]" : "[width, inChannels, filters]"
        guard x.rank == rank else {
            throw TensorError.invalidShape(operation: operation, shape: x.shape, reason: "expected an input of rank \(rank) \(layout)")
        }
        guard kernel.rank == rank else {
            throw TensorError.invalidShape(operation: operation, shape: kernel.shape, reason: "expected a kernel of rank \(rank) \(kernelLayout)")
        }
        guard kernel.shape[rank - 2] == x.shape[rank - 1] else {
            throw TensorError.incompatibleShapes(
                operation: operation, lhs: x.shape, rhs: kernel.shape,
                reason: "the kernel is for \(kernel.shape[rank - 2]) input channels, the input has \(x.shape[rank - 1])")
        }
        for d in kernel.shape.dropLast(2) where d <= 0 {
            throw TensorError.invalidShape(operation: operation, shape: kernel.shape, reason: "the kernel's window sizes must be positive")
        }
    }

    /// The forward pass and its recording, for an already checked geometry.
    static func convolve(_ x: Tensor, _ kernel: Tensor, _ g: ConvGeometry, outputShape: [Int], operation: String) throws -> Tensor {
        let out = try Tensor(uninitializedShape: outputShape, dtype: x.dtype, operation: operation)
        let m = g.positions, k = g.patch, n = g.filters
        if m == 0 || n == 0 || k == 0 {
            out.storage.zeroFill()
            return out
        }
        // The im2col matrix, kept for the kernel's gradient when a tape records this op.
        var cols: Tensor?
        if !g.isPointwise { cols = try Tensor(uninitializedShape: [m, k], dtype: x.dtype, operation: operation) }
        func run<T: FloatingElement>(_: T.Type) {
            var a = x._pointer(T.self)
            if let cols {
                im2col(x._pointer(T.self), cols._mutablePointer(T.self), g)
                a = cols._pointer(T.self)
            }
            T.gemm(transposeA: false, transposeB: false, m: m, n: n, k: k, alpha: 1, a: a, lda: k,
                   b: kernel._pointer(T.self), ldb: n, beta: 0, c: out._mutablePointer(T.self), ldc: n)
        }
        withExtendedLifetime((x, kernel, cols)) {
            if x.dtype == .float32 { run(Float.self) } else { run(Double.self) }
        }
        let inputShape = x.shape, kernelShape = kernel.shape
        return Autodiff.recordBinary(operation, x, kernel, out, backward: { [cols] grad in
            let needInput = x.tapeNode != 0, needKernel = kernel.tapeNode != 0
            let gr = try grad.reshaped(to: [m, n])
            var dx: Tensor?, dk: Tensor?
            if needKernel {
                // dkernel[k, f] = colsᵀ · g.
                let a = cols ?? x
                dk = try Tensor(uninitializedShape: kernelShape, dtype: x.dtype, operation: "\(operation) kernel gradient")
                func run<T: FloatingElement>(_: T.Type) {
                    T.gemm(transposeA: true, transposeB: false, m: k, n: n, k: m, alpha: 1, a: a._pointer(T.self), lda: k,
                           b: gr._pointer(T.self), ldb: n, beta: 0, c: dk!._mutablePointer(T.self), ldc: n)
                }
                withExtendedLifetime((a, gr)) { if x.dtype == .float32 { run(Float.self) } else { run(Double.self) } }
            }
            if needInput {
                dx = try Tensor(uninitializedShape: inputShape, dtype: x.dtype, operation: "\(operation) input gradient")
                // dcols[m, k] = g · kernelᵀ, then added back into the input positions (col2im).
                let dcols = g.isPointwise ? dx! : try Tensor(uninitializedShape: [m, k], dtype: x.dtype, operation: "\(operation) input gradient")
                func run<T: FloatingElement>(_: T.Type) {
                    T.gemm(transposeA: false, transposeB: true, m: m, n: k, k: n, alpha: 1, a: gr._pointer(T.self), lda: n,
                           b: kernel._pointer(T.self), ldb: n, beta: 0, c: dcols._mutablePointer(T.self), ldc: k)
                    if !g.isPointwise { col2im(dcols._pointer(T.self), dx!._mutablePointer(T.self), g) }
                }
                withExtendedLifetime((gr, kernel, dcols)) { if x.dtype == .float32 { run(Float.self) } else { run(Double.self) } }
            }
            return [dx.map { .dense($0) }, dk.map { .dense($0) }]
        })
    }
}

/// Writes the receptive field of each output position as one row of `cols` (`[n·oh·ow, kh·kw·c]`,
/// taps in kernel order `(a, b, c)`), zeros for padding; rows split across ``ThreadPool``.
@usableFromInline
func im2col<T: FloatingElement>(_ x: UnsafePointer<T>, _ cols: UnsafeMutablePointer<T>, _ g: ConvGeometry) {
    let patch = g.patch, c = g.channels
    let (h, w) = (g.rows.input, g.cols.input)
    let (kh, kw) = (g.rows.window, g.cols.window)
    let (oh, ow) = (g.rows.output, g.cols.output)
    let (sh, sw, dh, dw) = (g.rows.stride, g.cols.stride, g.rows.dilation, g.cols.dilation)
    let (pt, pl) = (g.rows.padBefore, g.cols.padBefore)
    let rowBytes = kw * c
    let box = UncheckedSendable((x, cols))
    ThreadPool.parallelFor(g.positions, grain: Swift.max(1, ThreadPool.kernelGrain / Swift.max(patch, 1)), alignment: 1) { range in
        let (x, cols) = box.value
        for r in range {
            let img = r / (oh * ow), rem = r % (oh * ow)
            let oy = rem / ow, ox = rem % ow
            var dst = cols + r * patch
            let ix0 = ox * sw - pl
            for a in 0..<kh {
                let iy = oy * sh - pt + a * dh
                if iy < 0 || iy >= h {
                    dst.update(repeating: 0, count: rowBytes)
                    dst += rowBytes
                    continue
                }
                let src = x + ((img * h + iy) * w) * c
                if dw == 1 && ix0 >= 0 && ix0 + kw <= w {
                    dst.update(from: src + ix0 * c, count: rowBytes)
                    dst += rowBytes
                    continue
                }
                for b in 0..<kw {
                    let ix = ix0 + b * dw
                    if ix < 0 || ix >= w { dst.update(repeating: 0, count: c) } else { dst.update(from: src + ix * c, count: c) }
                    dst += c
                }
            }
        }
    }
}

/// The adjoint of ``im2col(_:_:_:)``: `dx` (zeroed here) receives the sum of every `dcols` element at the
/// input position it was copied from. Images split across ``ThreadPool`` (their `dx` regions are disjoint).
@usableFromInline
func col2im<T: FloatingElement>(_ dcols: UnsafePointer<T>, _ dx: UnsafeMutablePointer<T>, _ g: ConvGeometry) {
    let patch = g.patch, c = g.channels
    let (h, w) = (g.rows.input, g.cols.input)
    let (kh, kw) = (g.rows.window, g.cols.window)
    let (oh, ow) = (g.rows.output, g.cols.output)
    let (sh, sw, dh, dw) = (g.rows.stride, g.cols.stride, g.rows.dilation, g.cols.dilation)
    let (pt, pl) = (g.rows.padBefore, g.cols.padBefore)
    let imageSize = h * w * c
    let box = UncheckedSendable((dcols, dx))
    let grain = Swift.max(1, ThreadPool.kernelGrain / Swift.max(oh * ow * patch, 1))
    ThreadPool.parallelFor(g.batch, grain: grain, alignment: 1) { images in
        let (dcols, dx) = box.value
        (dx + images.lowerBound * imageSize).update(repeating: 0, count: images.count * imageSize)
        for img in images {
            let base = dx + img * imageSize
            for oy in 0..<oh {
                for ox in 0..<ow {
                    var src = dcols + ((img * oh + oy) * ow + ox) * patch
                    let ix0 = ox * sw - pl
                    for a in 0..<kh {
                        let iy = oy * sh - pt + a * dh
                        if iy < 0 || iy >= h { src += kw * c; continue }
                        let row = base + iy * w * c
                        for b in 0..<kw {
                            let ix = ix0 + b * dw
                            if ix >= 0 && ix < w {
                                let d = row + ix * c
                                for j in 0..<c { d[j] += src[j] }
                            }
                            src += c
                        }
                    }
                }
            }
        }
    }
}
