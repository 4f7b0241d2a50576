"""Training. `python -m deeplab_dpc.train` is `__main__.py` (flags only).

`loop` is the tf.distribute loop for any Keras model (`TrainStep`, `TrainHooks`);
`deeplab` gives it DeepLab's model, input pipeline and hooks; `config` holds
`TrainConfig` (no TensorFlow import, so flags are checked in a second);
`losses`, `schedules`, `distribute` and `initial_checkpoint` are its parts.
"""
