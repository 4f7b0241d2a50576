"""Export. `python -m deeplab_dpc.export` is `__main__.py` (flags only).

`saved_model`: the SavedModel of a `predict.serving.ServingModule`; `tflite`: float
and dynamic-range quantized TFLite models of MobileNet-v2 checkpoints.
"""
