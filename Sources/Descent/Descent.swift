// Descent: Keras' OptimizerV2 system in Swift. `import Descent` brings in every module.
@_exported import DescentAutodiff
@_exported import DescentTensor
@_exported import DescentDistribute
@_exported import DescentMPI
@_exported import DescentOptimizers
@_exported import DescentKeras
@_exported import DescentTensorBoard
