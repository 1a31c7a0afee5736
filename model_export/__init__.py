"""The segmentation model line: phantoms, the 3D U-Net, training, ONNX export, evaluation.

Only this package imports torch; the runtime (habitus.segment) runs the exported ONNX model.
"""
