@_spi(DescentInternals) import DescentTensor

/// The shared part of ``MaxPooling2D`` and ``AveragePooling2D``: the window arguments and output shape.
public class Pooling2D: Layer {
    /// Keras 3 builds it at creation: its model config has no `build_config`.
    public override class var recordsKerasBuildConfig: Bool { false }
    /// The window `(height, width)`.
    public let poolSize: Size2D
    /// The step between windows (Keras' default: the pool size).
    public let strides: Size2D
    /// `.valid` or `.same`.
    public let padding: Padding

    init(layer: String, poolSize: Size2D, strides: Size2D?, padding: Padding, name: String?) throws {
        let strides = strides ?? poolSize
        for (argument, size) in [("poolSize", poolSize), ("strides", strides)] {
            try LayerArguments.requirePositive(size.height, layer, "\(argument).height")
            try LayerArguments.requirePositive(size.width, layer, "\(argument).width")
        }
        guard padding != .causal else {
            throw KerasError.invalidArgument(field: "\(layer).padding", message: "expected .valid or .same, got .causal")
        }
        self.poolSize = poolSize
        self.strides = strides
        self.padding = padding
        super.init(name: name)
    }

    /// The output's height and width, or the error naming the layer and the shape it needs.
    func checkInput(_ shape: [Int]) throws {
        _ = try ConvolutionArguments.spatialOutput("\(type(of: self)) '\(name)'", shape, rank: 2, windows: [poolSize.height, poolSize.width],
                                                   strides: [strides.height, strides.width], dilations: [1, 1], padding: padding)
    }

    /// Checks the input shape (`[batch, height, width, channels]`, at least the window with `.valid`).
    public override func build(inputShape: [Int]) throws { try checkInput(inputShape) }

    /// `[batch, oh, ow, channels]`; an output length that would be empty is `-1`.
    public override func outputShape(forInputShape shape: [Int]) -> [Int] {
        guard shape.count == 4 else { return shape }
        let oh = ConvolutionArguments.outputLength(shape[1], window: poolSize.height, padding: padding, stride: strides.height, dilation: 1)
        let ow = ConvolutionArguments.outputLength(shape[2], window: poolSize.width, padding: padding, stride: strides.width, dilation: 1)
        return [shape[0], oh ?? -1, ow ?? -1, shape[3]]
    }
}

/// The maximum of each window, per channel (Keras' `MaxPooling2D`, channels last); see
/// ``DescentTensor/Tensor/maxPool2d(poolSize:strides:padding:)``. The gradient goes to the first maximum
/// of each window, as TensorFlow's.
public final class MaxPooling2D: Pooling2D {
    /// - Parameter strides: `nil` (Keras' `None`) is the pool size.
    /// - Throws: ``KerasError/invalidArgument(field:message:)`` naming the layer and the argument when a
    ///   size is not positive or `padding` is `.causal`.
    public init(poolSize: Size2D = 2, strides: Size2D? = nil, padding: Padding = .valid, name: String? = nil) throws {
        try super.init(layer: LayerArguments.layer("MaxPooling2D", name), poolSize: poolSize, strides: strides, padding: padding, name: name)
    }

    public override func call(_ input: Tensor, training: Bool) throws -> Tensor {
        try checkInput(input.shape)
        return try input.maxPool2d(poolSize: poolSize, strides: strides, padding: padding)
    }
}

/// The mean of each window, per channel (Keras' `AveragePooling2D`, channels last); with `.same`
/// padding a border window divides by its count of positions inside the input, as TensorFlow's. See
/// ``DescentTensor/Tensor/averagePool2d(poolSize:strides:padding:)``.
public final class AveragePooling2D: Pooling2D {
    /// - Parameter strides: `nil` (Keras' `None`) is the pool size.
    /// - Throws: ``KerasError/invalidArgument(field:message:)`` naming the layer and the argument when a
    ///   size is not positive or `padding` is `.causal`.
    public init(poolSize: Size2D = 2, strides: Size2D? = nil, padding: Padding = .valid, name: String? = nil) throws {
        try super.init(layer: LayerArguments.layer("AveragePooling2D", name), poolSize: poolSize, strides: strides, padding: padding, name: name)
    }

    public override func call(_ input: Tensor, training: Bool) throws -> Tensor {
        try checkInput(input.shape)
        return try input.averagePool2d(poolSize: poolSize, strides: strides, padding: padding)
    }
}

/// The mean over the steps of `[batch, steps, channels]` inputs (Keras' `GlobalAveragePooling1D`,
/// channels last, without a mask): `[batch, channels]`, or `[batch, 1, channels]` with `keepdims`.
public final class GlobalAveragePooling1D: Layer {
    /// Keras 3 builds it at creation: its model config has no `build_config`.
    public override class var recordsKerasBuildConfig: Bool { false }
    /// Whether the pooled axis is kept with length 1.
    public let keepdims: Bool

    /// Creates the layer (it has no argument a caller can get wrong).
    public init(keepdims: Bool = false, name: String? = nil) {
        self.keepdims = keepdims
        super.init(name: name)
    }

    /// Checks that inputs are `[batch, steps, channels]` with at least one step.
    public override func build(inputShape: [Int]) throws { try GlobalPoolingShapes.check(self, inputShape, rank: 3) }

    public override func call(_ input: Tensor, training: Bool) throws -> Tensor {
        try GlobalPoolingShapes.check(self, input.shape, rank: 3)
        return try input.globalAveragePooled(keepDims: keepdims)
    }

    /// `[batch, channels]`, or `[batch, 1, channels]` with `keepdims`.
    public override func outputShape(forInputShape shape: [Int]) -> [Int] { GlobalPoolingShapes.output(shape, keepdims) }
}

/// The mean over the rows and columns of `[batch, height, width, channels]` inputs (Keras'
/// `GlobalAveragePooling2D`, channels last): `[batch, channels]`, or `[batch, 1, 1, channels]` with `keepdims`.
public final class GlobalAveragePooling2D: Layer {
    /// Keras 3 builds it at creation: its model config has no `build_config`.
    public override class var recordsKerasBuildConfig: Bool { false }
    /// Whether the pooled axes are kept with length 1.
    public let keepdims: Bool

    /// Creates the layer (it has no argument a caller can get wrong).
    public init(keepdims: Bool = false, name: String? = nil) {
        self.keepdims = keepdims
        super.init(name: name)
    }

    /// Checks that inputs are `[batch, height, width, channels]` with non-empty rows and columns.
    public override func build(inputShape: [Int]) throws { try GlobalPoolingShapes.check(self, inputShape, rank: 4) }

    public override func call(_ input: Tensor, training: Bool) throws -> Tensor {
        try GlobalPoolingShapes.check(self, input.shape, rank: 4)
        return try input.globalAveragePooled(keepDims: keepdims)
    }

    /// `[batch, channels]`, or `[batch, 1, 1, channels]` with `keepdims`.
    public override func outputShape(forInputShape shape: [Int]) -> [Int] { GlobalPoolingShapes.output(shape, keepdims) }
}

enum GlobalPoolingShapes {
    static func check(_ layer: Layer, _ shape: [Int], rank: Int) throws {
        let layout = rank == 3 ? "[batch, steps, channels]" : "[batch, height, width, channels]"
        guard shape.count == rank, shape.dropFirst().dropLast().allSatisfy({ $0 > 0 }) else {
            throw TensorError.invalidShape(operation: "\(type(of: layer)) '\(layer.name)'", shape: shape,
                                           reason: "expects inputs of rank \(rank) \(layout) with non-empty pooled axes")
        }
    }

    static func output(_ shape: [Int], _ keepdims: Bool) -> [Int] {
        guard shape.count >= 3 else { return shape }
        return keepdims ? [shape[0]] + [Int](repeating: 1, count: shape.count - 2) + [shape[shape.count - 1]] : [shape[0], shape[shape.count - 1]]
    }
}
