"""The TensorFlow/Keras stage: data, background class, training, convolutionalization, export.

Needs the `train` extra. May import `runtime` to verify what it exported; never the reverse.
"""
