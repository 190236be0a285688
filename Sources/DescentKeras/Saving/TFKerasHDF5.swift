import DescentAutodiff
import DescentHDF5
@_spi(DescentInternals) import DescentOptimizers
import DescentTensor

// tf_keras' HDF5 layouts (Tests/Fixtures/keras_files/LAYOUTS.md):
//
//   save_weights("w.h5") / model.save("m.h5")'s /model_weights:
//     attrs layer_names (vlen ASCII [n], every layer), backend, keras_version (vlen ASCII)
//     /<layer>            attr weight_names (vlen ASCII ["<layer>/kernel:0", ...]; empty float64 array if none)
//     /<layer>/<layer>/kernel:0 ...  the weights (float32, contiguous)
//     /top_level_model_weights  attr weight_names = empty float64 array
//   model.save("m.h5") root: attrs keras_version, backend (vlen UTF-8), model_config, training_config
//     (vlen ASCII JSON); /optimizer_weights attr weight_names (get_weights() order), datasets at
//     /optimizer_weights/<name>, the iteration count an int64 scalar.
//
// Loading follows tf_keras: layers with weights are matched by position (as `load_weights` of an
// HDF5 file does, names are not compared), weights within a layer by position, and every count and
// shape is checked before anything is assigned.

enum TFKerasHDF5 {
    static let kerasVersion = "2.21.0"

    /// `weight_names` for a list of variables (`"dense/kernel:0"`), or the empty float64 array Keras
    /// writes for none.
    static func weightNames(_ variables: [Variable]) -> HDF5Attribute {
        variables.isEmpty ? .doubles([]) : .strings(variables.map { $0.name + ":0" }, .ascii)
    }

    /// Writes the model's weights into `group` (the file root for `save_weights`, `/model_weights` for a
    /// full model).
    static func writeWeights(of model: Model, into group: HDF5Group) {
        group.setAttribute("layer_names", model.layers.isEmpty ? .doubles([]) : .strings(model.layers.map(\.name), .ascii))
        group.setAttribute("backend", .string("tensorflow", .ascii))
        group.setAttribute("keras_version", .string(kerasVersion, .ascii))
        for layer in model.layers {
            let g = group.addGroup(layer.name)
            g.setAttribute("weight_names", weightNames(layer.weights))
            for w in layer.weights { g.addDataset(w.name + ":0", w.untrackedValue) }
        }
        group.addGroup("top_level_model_weights").setAttribute("weight_names", .doubles([]))
    }

    /// A string list attribute, also in tf_keras' chunked form (`name0`, `name1`, ... for lists too
    /// large for one attribute).
    static func stringList(_ file: HDF5File, _ name: String, of path: String) throws -> [String]? {
        if let value = try file.attribute(name, of: path) {
            guard let list = value.stringList else {
                throw HDF5Error(file: file.name, path: "\(path) attribute '\(name)'", message: "expected a list of strings, got \(value.kindDescription)")
            }
            return list
        }
        var all: [String] = []
        var i = 0
        while let chunk = try file.attribute("\(name)\(i)", of: path) {
            guard let list = chunk.stringList else {
                throw HDF5Error(file: file.name, path: "\(path) attribute '\(name)\(i)'", message: "expected a list of strings, got \(chunk.kindDescription)")
            }
            all += list
            i += 1
        }
        return i == 0 ? nil : all
    }

    /// Reads the weights of `model` from the layout at `root`, checked against the model: the values
    /// to assign, in ``Sequential/weights`` order.
    /// - Throws: ``HDF5Error`` naming the file and path for a missing attribute or dataset, a layer or
    ///   weight count that differs, or a shape that differs.
    static func readWeights(_ file: HDF5File, at root: String, for model: Model) throws -> [Tensor] {
        guard let layerNames = try stringList(file, "layer_names", of: root) else {
            throw HDF5Error(file: file.name, path: root, message: "has no 'layer_names' attribute: not a Keras weights file")
        }
        var saved: [(name: String, weights: [String])] = []
        for name in layerNames {
            let path = joined(root, name)
            guard let names = try stringList(file, "weight_names", of: path) else {
                throw HDF5Error(file: file.name, path: path, message: "has no 'weight_names' attribute")
            }
            if !names.isEmpty { saved.append((name, names)) }
        }
        let layers = model.layers.filter { !$0.weights.isEmpty }
        guard saved.count == layers.count else {
            throw HDF5Error(file: file.name, path: root, message: "holds weights for \(saved.count) layers (\(saved.map(\.name).joined(separator: ", "))), "
                                + "but the model has \(layers.count) layers with weights (\(layers.map(\.name).joined(separator: ", ")))")
        }
        var values: [Tensor] = []
        for (layer, entry) in zip(layers, saved) {
            let path = joined(root, entry.name)
            guard entry.weights.count == layer.weights.count else {
                throw HDF5Error(file: file.name, path: path, message: "holds \(entry.weights.count) weights for layer '\(layer.name)', which has \(layer.weights.count)")
            }
            for (variable, weightName) in zip(layer.weights, entry.weights) {
                values.append(try readValue(file, joined(path, weightName), for: variable))
            }
        }
        return values
    }

    /// Reads one dataset for `variable`: the shape must be the variable's; a float dataset is cast to
    /// the variable's float dtype.
    static func readValue(_ file: HDF5File, _ path: String, for variable: Variable) throws -> Tensor {
        let info = try file.datasetInfo(at: path)
        guard info.shape == variable.shape else {
            throw HDF5Error(file: file.name, path: path, message: "has shape \(info.shape), but '\(variable.name)' has shape \(variable.shape)")
        }
        guard info.dtype.isFloatingPoint == variable.dtype.isFloatingPoint else {
            throw HDF5Error(file: file.name, path: path, message: "holds \(info.dtype) values, but '\(variable.name)' is \(variable.dtype)")
        }
        let value = try file.readDataset(at: path)
        return value.dtype == variable.dtype ? value : value.cast(to: variable.dtype)
    }

    static func joined(_ group: String, _ name: String) -> String { group.hasSuffix("/") ? group + name : group + "/" + name }

    /// Writes the optimizer's weights (`/optimizer_weights`).
    static func writeOptimizer(_ optimizer: Optimizer, into root: HDF5Group) {
        let g = root.addGroup("optimizer_weights")
        g.setAttribute("weight_names", weightNames(optimizer.weights))
        for w in optimizer.weights { g.addDataset(w.name + ":0", w.untrackedValue) }
    }

    /// Reads `/optimizer_weights` for `optimizer` built for `model`: the values for
    /// `optimizer.setWeights`, by position as tf_keras does, every count and shape checked.
    static func readOptimizerWeights(_ file: HDF5File, for optimizer: Optimizer, model: Model) throws -> [Tensor]? {
        guard try file.kind(of: "/optimizer_weights") == .group else { return nil }
        guard let names = try stringList(file, "weight_names", of: "/optimizer_weights") else {
            throw HDF5Error(file: file.name, path: "/optimizer_weights", message: "has no 'weight_names' attribute")
        }
        try optimizer.build(model.trainableWeights)
        _ = optimizer.iterations
        let weights = optimizer.weights
        guard names.count == weights.count else {
            throw HDF5Error(file: file.name, path: "/optimizer_weights",
                            message: "holds \(names.count) optimizer weights, but the \(type(of: optimizer).kerasClassName) optimizer of this model has \(weights.count)")
        }
        return try zip(weights, names).map { variable, name in try readValue(file, joined("/optimizer_weights", name), for: variable) }
    }
}
