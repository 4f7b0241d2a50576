"""DeepLab with the Dense Prediction Cell (DPC) for TensorFlow 2 / Keras 3."""

__version__ = "0.1.0"
