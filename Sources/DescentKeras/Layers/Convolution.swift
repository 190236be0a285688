import DescentAutodiff
@_spi(DescentInternals) import DescentTensor
import DescentOptimizers

/// What the convolution layers share: the arguments' checks and the output lengths (Keras'
/// `conv_utils.conv_output_length`).
enum ConvolutionArguments {
    /// The output length of one axis: `ceil((L − (k − 1)·d) / s)` for `valid`, `ceil(L / s)` for `same`
    /// and `causal`; `nil` when it would be empty (or the input length is unknown, `-1`).
    static func outputLength(_ input: Int, window: Int, padding: Padding, stride: Int, dilation: Int) -> Int? {
        guard input >= 0, window > 0, stride > 0, dilation > 0 else { return nil }
        let span = (window - 1) * dilation + 1
        let length = padding == .valid ? input - span + 1 : input
        let out = (length + stride - 1) / stride
        return length > 0 && out > 0 ? out : nil
    }

    /// Keras' refusal of `strides > 1` together with `dilation_rate > 1`.
    static func checkStridesAndDilation(_ layer: String, strides: [Int], dilation: [Int], describe: (String, String)) throws {
        guard strides.max()! > 1 && dilation.max()! > 1 else { return }
        throw KerasError.invalidArgument(
            field: "\(layer).dilationRate",
            message: "strides > 1 is not supported together with dilationRate > 1 (as Keras), got strides \(describe.0) and dilationRate \(describe.1)")
    }

    /// The spatial output lengths for an input shape, or the error naming the layer and the shape it needs.
    static func spatialOutput(_ layer: String, _ inputShape: [Int], rank: Int, windows: [Int], strides: [Int], dilations: [Int],
                              padding: Padding) throws -> [Int] {
        let layout = rank == 2 ? "[batch, height, width, channels]" : "[batch, steps, channels]"
        guard inputShape.count == rank + 2 else {
            throw TensorError.invalidShape(operation: layer, shape: inputShape, reason: "expects inputs of rank \(rank + 2) \(layout)")
        }
        return try (0..<rank).map { i in
            guard let out = outputLength(inputShape[1 + i], window: windows[i], padding: padding, stride: strides[i], dilation: dilations[i]) else {
                throw TensorError.invalidShape(
                    operation: layer, shape: inputShape,
                    reason: "the input's \(rank == 2 ? ["height", "width"][i] : "steps") of \(inputShape[1 + i]) is too small for a window of \(windows[i])\(dilations[i] > 1 ? " dilated by \(dilations[i])" : "") with \(padding.rawValue) padding: the output would be empty")
            }
            return out
        }
    }
}

/// The shared part of ``Conv2D`` and ``Conv1D``: weights, activation and regularization.
public class Convolution: Layer {
    /// The number of output channels (Keras' `filters`).
    public let filters: Int
    /// Applied to the convolution plus bias.
    public let activation: Activation
    /// Whether the layer has a bias vector.
    public let useBias: Bool
    /// How the kernel starts (fans: `fanIn = window · inChannels`, `fanOut = window · filters`).
    public let kernelInitializer: Initializer
    /// How the bias starts.
    public let biasInitializer: Initializer
    /// The kernel's penalty, if any.
    public let kernelRegularizer: Regularizer?
    /// The bias' penalty, if any.
    public let biasRegularizer: Regularizer?
    /// Applied to the kernel after each update.
    public let kernelConstraint: (any VariableConstraint)?
    /// Applied to the bias after each update.
    public let biasConstraint: (any VariableConstraint)?
    /// The kernel (`[kh, kw, inChannels, filters]` for ``Conv2D``, `[k, inChannels, filters]` for
    /// ``Conv1D``), after the first call.
    public private(set) var kernel: Variable?
    /// `[filters]`, after the first call (when `useBias`).
    public private(set) var bias: Variable?

    init(layer: String, filters: Int, activation: Activation, useBias: Bool, kernelInitializer: Initializer, biasInitializer: Initializer,
         kernelRegularizer: Regularizer?, biasRegularizer: Regularizer?, kernelConstraint: (any VariableConstraint)?,
         biasConstraint: (any VariableConstraint)?, name: String?) throws {
        try LayerArguments.requirePositive(filters, layer, "filters")
        try LayerArguments.check(layer, initializers: [("kernelInitializer", kernelInitializer), ("biasInitializer", biasInitializer)],
                                 regularizers: [("kernelRegularizer", kernelRegularizer), ("biasRegularizer", biasRegularizer)])
        self.filters = filters
        self.activation = activation
        self.useBias = useBias
        self.kernelInitializer = kernelInitializer
        self.biasInitializer = biasInitializer
        self.kernelRegularizer = kernelRegularizer
        self.biasRegularizer = biasRegularizer
        self.kernelConstraint = kernelConstraint
        self.biasConstraint = biasConstraint
        super.init(name: name)
    }

    /// Creates the kernel of `window + [inChannels, filters]` and the bias.
    func createWeights(window: [Int], inChannels: Int) throws {
        kernel = try addWeight(name: "kernel", shape: window + [inChannels, filters], initializer: kernelInitializer,
                               regularizer: kernelRegularizer, constraint: kernelConstraint)
        if useBias {
            bias = try addWeight(name: "bias", shape: [filters], initializer: biasInitializer,
                                 regularizer: biasRegularizer, constraint: biasConstraint)
        }
    }

    /// The built kernel, after checking that `input` has the rank and channel count it was built for.
    func checkedKernel(_ input: Tensor, layout: String) throws -> Variable {
        guard let kernel else { throw LayerArguments.notBuilt(self) }
        let rank = kernel.shape.count
        guard input.rank == rank, input.shape[rank - 1] == kernel.shape[rank - 2] else {
            throw TensorError.incompatibleShapes(
                operation: "\(type(of: self)) '\(name)'", lhs: input.shape, rhs: kernel.shape,
                reason: "expects inputs \(layout) with \(kernel.shape[rank - 2]) channels (the layer was built for them)")
        }
        return kernel
    }

    /// Bias and activation after the convolution (bias and ReLU in one pass, as ``Dense``).
    func finish(_ y: Tensor) throws -> Tensor {
        guard let bias else { return try activation(y) }
        if activation == .relu { return try y.addingBias(bias.value, relu: true) }
        return try activation(y.addingBias(bias.value))
    }
}

/// A 2-D convolution over `[batch, height, width, channels]` inputs (Keras' `Conv2D`, channels last):
/// `activation(conv2d(x, kernel) + bias)` with a `[kh, kw, inChannels, filters]` kernel; see
/// ``DescentTensor/Tensor/conv2d(_:strides:padding:dilations:)`` for the exact sum and the padding.
public final class Conv2D: Convolution {
    /// The window `(kh, kw)`.
    public let kernelSize: Size2D
    /// The step between windows.
    public let strides: Size2D
    /// `.valid` or `.same` (TensorFlow's: the extra padding at the bottom/right).
    public let padding: Padding
    /// The spacing of the kernel's taps.
    public let dilationRate: Size2D

    /// Creates a Conv2D layer; its kernel is created at the first call from the input's channel count.
    /// - Throws: ``KerasError/invalidArgument(field:message:)`` naming the layer and the argument when
    ///   `filters`, a kernel size, a stride or a dilation rate is not positive, `padding` is `.causal`
    ///   (only ``Conv1D`` has it), strides > 1 come with a dilation rate > 1 (Keras refuses that too), or
    ///   an initializer or regularizer has an invalid parameter.
    public init(_ filters: Int, kernelSize: Size2D, strides: Size2D = 1, padding: Padding = .valid, dilationRate: Size2D = 1,
                activation: Activation = .linear, useBias: Bool = true,
                kernelInitializer: Initializer = .glorotUniform, biasInitializer: Initializer = .zeros,
                kernelRegularizer: Regularizer? = nil, biasRegularizer: Regularizer? = nil,
                kernelConstraint: (any VariableConstraint)? = nil, biasConstraint: (any VariableConstraint)? = nil,
                name: String? = nil) throws {
        let layer = LayerArguments.layer("Conv2D", name)
        for (argument, size) in [("kernelSize", kernelSize), ("strides", strides), ("dilationRate", dilationRate)] {
            try LayerArguments.requirePositive(size.height, layer, "\(argument).height")
            try LayerArguments.requirePositive(size.width, layer, "\(argument).width")
        }
        guard padding != .causal else {
            throw KerasError.invalidArgument(field: "\(layer).padding", message: "causal padding is only supported by Conv1D (as Keras); use .valid or .same")
        }
        try ConvolutionArguments.checkStridesAndDilation(layer, strides: [strides.height, strides.width],
                                                         dilation: [dilationRate.height, dilationRate.width],
                                                         describe: (strides.description, dilationRate.description))
        self.kernelSize = kernelSize
        self.strides = strides
        self.padding = padding
        self.dilationRate = dilationRate
        try super.init(layer: layer, filters: filters, activation: activation, useBias: useBias, kernelInitializer: kernelInitializer,
                       biasInitializer: biasInitializer, kernelRegularizer: kernelRegularizer, biasRegularizer: biasRegularizer,
                       kernelConstraint: kernelConstraint, biasConstraint: biasConstraint, name: name)
    }

    private func spatialOutput(_ shape: [Int]) throws -> [Int] {
        try ConvolutionArguments.spatialOutput("Conv2D '\(name)'", shape, rank: 2, windows: [kernelSize.height, kernelSize.width],
                                               strides: [strides.height, strides.width],
                                               dilations: [dilationRate.height, dilationRate.width], padding: padding)
    }

    /// Creates the `[kh, kw, channels, filters]` kernel and the bias.
    /// - Throws: ``DescentTensor/TensorError`` naming the layer for an input that is not
    ///   `[batch, height, width, channels]` or too small for the window.
    public override func build(inputShape: [Int]) throws {
        _ = try spatialOutput(inputShape)
        try createWeights(window: [kernelSize.height, kernelSize.width], inChannels: inputShape[3])
    }

    public override func call(_ input: Tensor, training: Bool) throws -> Tensor {
        let kernel = try checkedKernel(input, layout: "[batch, height, width, channels]")
        _ = try spatialOutput(input.shape)
        return try finish(input.conv2d(kernel.value, strides: strides, padding: padding, dilations: dilationRate))
    }

    /// `[batch, oh, ow, filters]`; an output length that would be empty is `-1`.
    public override func outputShape(forInputShape shape: [Int]) -> [Int] {
        guard shape.count == 4 else { return shape.dropLast() + [filters] }
        let oh = ConvolutionArguments.outputLength(shape[1], window: kernelSize.height, padding: padding, stride: strides.height, dilation: dilationRate.height)
        let ow = ConvolutionArguments.outputLength(shape[2], window: kernelSize.width, padding: padding, stride: strides.width, dilation: dilationRate.width)
        return [shape[0], oh ?? -1, ow ?? -1, filters]
    }
}

/// A 1-D convolution over `[batch, steps, channels]` inputs (Keras' `Conv1D`, channels last) with a
/// `[k, inChannels, filters]` kernel; see ``DescentTensor/Tensor/conv1d(_:stride:padding:dilation:)``.
public final class Conv1D: Convolution {
    /// The window length.
    public let kernelSize: Int
    /// The step between windows.
    public let strides: Int
    /// `.valid`, `.same` or `.causal` (`(k − 1)·dilationRate` zeros before the steps).
    public let padding: Padding
    /// The spacing of the kernel's taps.
    public let dilationRate: Int

    /// Creates a Conv1D layer; its kernel is created at the first call from the input's channel count.
    /// - Throws: ``KerasError/invalidArgument(field:message:)`` naming the layer and the argument when
    ///   `filters`, `kernelSize`, `strides` or `dilationRate` is not positive, strides > 1 come with a
    ///   dilation rate > 1, or an initializer or regularizer has an invalid parameter.
    public init(_ filters: Int, kernelSize: Int, strides: Int = 1, padding: Padding = .valid, dilationRate: Int = 1,
                activation: Activation = .linear, useBias: Bool = true,
                kernelInitializer: Initializer = .glorotUniform, biasInitializer: Initializer = .zeros,
                kernelRegularizer: Regularizer? = nil, biasRegularizer: Regularizer? = nil,
                kernelConstraint: (any VariableConstraint)? = nil, biasConstraint: (any VariableConstraint)? = nil,
                name: String? = nil) throws {
        let layer = LayerArguments.layer("Conv1D", name)
        try LayerArguments.requirePositive(kernelSize, layer, "kernelSize")
        try LayerArguments.requirePositive(strides, layer, "strides")
        try LayerArguments.requirePositive(dilationRate, layer, "dilationRate")
        try ConvolutionArguments.checkStridesAndDilation(layer, strides: [strides], dilation: [dilationRate],
                                                         describe: ("\(strides)", "\(dilationRate)"))
        self.kernelSize = kernelSize
        self.strides = strides
        self.padding = padding
        self.dilationRate = dilationRate
        try super.init(layer: layer, filters: filters, activation: activation, useBias: useBias, kernelInitializer: kernelInitializer,
                       biasInitializer: biasInitializer, kernelRegularizer: kernelRegularizer, biasRegularizer: biasRegularizer,
                       kernelConstraint: kernelConstraint, biasConstraint: biasConstraint, name: name)
    }

    private func spatialOutput(_ shape: [Int]) throws -> [Int] {
        try ConvolutionArguments.spatialOutput("Conv1D '\(name)'", shape, rank: 1, windows: [kernelSize], strides: [strides],
                                               dilations: [dilationRate], padding: padding)
    }

    /// Creates the `[k, channels, filters]` kernel and the bias.
    /// - Throws: ``DescentTensor/TensorError`` naming the layer for an input that is not
    ///   `[batch, steps, channels]` or too short for the window.
    public override func build(inputShape: [Int]) throws {
        _ = try spatialOutput(inputShape)
        try createWeights(window: [kernelSize], inChannels: inputShape[2])
    }

    public override func call(_ input: Tensor, training: Bool) throws -> Tensor {
        let kernel = try checkedKernel(input, layout: "[batch, steps, channels]")
        _ = try spatialOutput(input.shape)
        return try finish(input.conv1d(kernel.value, stride: strides, padding: padding, dilation: dilationRate))
    }

    /// `[batch, steps', filters]`; an output length that would be empty is `-1`.
    public override func outputShape(forInputShape shape: [Int]) -> [Int] {
        guard shape.count == 3 else { return shape.dropLast() + [filters] }
        let out = ConvolutionArguments.outputLength(shape[1], window: kernelSize, padding: padding, stride: strides, dilation: dilationRate)
        return [shape[0], out ?? -1, filters]
    }
}
