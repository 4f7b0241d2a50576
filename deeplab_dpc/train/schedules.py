"""The reference DeepLab learning rate: poly or step decay after a slow start."""
import keras
import tensorflow as tf

from deeplab_dpc.common import KERAS_PACKAGE


@keras.saving.register_keras_serializable(package=KERAS_PACKAGE)
class DeepLabLearningRate(keras.optimizers.schedules.LearningRateSchedule):
    """`slow_start_learning_rate` for step < `slow_start_step`, then decay.

    As the reference's final `get_model_learning_rate`, decay counts steps from
    the end of the slow start: with s' = step - slow_start_step,
      poly: base * (1 - s' / (total - slow_start_step)) ** power  (0 at the end),
      step: base * decay_factor ** floor(s' / decay_step).
    Without slow start this is the paper's base * (1 - step / total) ** power.
    """

    def __init__(self, base_learning_rate, training_number_of_steps, learning_policy="poly",
                 learning_power=0.9, learning_rate_decay_step=2000,
                 learning_rate_decay_factor=0.1, slow_start_step=0,
                 slow_start_learning_rate=1e-4):
        self.base_learning_rate = base_learning_rate
        self.training_number_of_steps = training_number_of_steps
        self.learning_policy = learning_policy
        self.learning_power = learning_power
        self.learning_rate_decay_step = learning_rate_decay_step
        self.learning_rate_decay_factor = learning_rate_decay_factor
        self.slow_start_step = slow_start_step
        self.slow_start_learning_rate = slow_start_learning_rate

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        after = tf.maximum(step - self.slow_start_step, 0.0)
        if self.learning_policy == "poly":
            span = float(self.training_number_of_steps - self.slow_start_step)
            lr = self.base_learning_rate * (1.0 - tf.minimum(after, span) / span) ** \
                self.learning_power
        elif self.learning_policy == "step":
            lr = self.base_learning_rate * self.learning_rate_decay_factor ** tf.floor(
                after / self.learning_rate_decay_step)
        else:
            raise ValueError(f"unknown learning_policy {self.learning_policy!r}")
        return tf.where(step < self.slow_start_step, self.slow_start_learning_rate, lr)

    def get_config(self):
        return dict(vars(self))
