import Descent

/// The second main-job recipe, `descent train --model cnn`: a small convolutional network on the 8×8
/// digits, the same in `descent bench train --model cnn` and in the PyTorch and tf_keras peers
/// (bench/peers).
///
///     Reshape([8, 8, 1]) → Conv2D(16, 3×3, same, ReLU) → MaxPooling2D(2) → Conv2D(32, 3×3, same, ReLU)
///     → MaxPooling2D(2) → Flatten → Dense(10)
///
/// 5,450 parameters; inputs are the digits' 64 features (0 to 16) as they come, logits out.
enum DigitsCNN {
    /// The layers, Keras' default initializers (draws from ``GlobalRandom``).
    static func layers() throws -> [Layer] {
        [try Reshape(targetShape: [8, 8, 1]),
         try Conv2D(16, kernelSize: 3, padding: .same, activation: .relu), try MaxPooling2D(poolSize: 2),
         try Conv2D(32, kernelSize: 3, padding: .same, activation: .relu),
         Flatten(), try Dense(10)]
    }

    /// The model, built for the digits' 64 inputs.
    static func model(name: String? = nil) throws -> Sequential {
        try Sequential(try layers(), inputShape: [64], name: name)
    }
}
