"""convdet runtime: run an exported detector with numpy, OpenCV and ONNX Runtime or LiteRT.

Never imports TensorFlow, Keras or tf2onnx. LiteRT is imported only for `.tflite` models,
ONNX Runtime only for `.onnx` models.
"""
