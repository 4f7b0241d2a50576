"""The Dense Prediction Cell: B branches built from a cell spec, concatenated,
then dropout and a 1x1 projection (the reference's `concat_projection`)."""
import keras
import tensorflow as tf

from deeplab_dpc import common
from deeplab_dpc import spec as spec_lib
from deeplab_dpc.errors import InputError
from deeplab_dpc.layers import ops


def rate_multiplier(output_stride):
    """Cell rates are defined at output stride 16; finer strides scale them up."""
    if output_stride not in (4, 8, 16):
        raise InputError(
            f"output_stride {output_stride}: the dense prediction cell needs 4, 8 or 16 "
            "(its rates are defined at 16, as in the reference)", param="output_stride")
    return 16 // output_stride


def as_cell_spec(cell):
    """A CellSpec from a CellSpec, the reference list of dicts or its JSON text."""
    if isinstance(cell, spec_lib.CellSpec):
        return cell
    if isinstance(cell, (list, tuple)):
        return spec_lib.CellSpec.from_reference(list(cell))
    return spec_lib.CellSpec.from_json(cell)


@keras.saving.register_keras_serializable(package=common.KERAS_PACKAGE)
class DensePredictionCell(ops._HeadLayer):
    """A DPC built from `cell` (a CellSpec or the reference's JSON list).

    The spec is stored in `get_config` in the reference JSON format, so the cell
    travels inside every saved model and checkpoint config. Branch i is named
    `branch{i}` and the projection `concat_projection`, as in the reference.
    """

    def __init__(self, cell=None, filters=256, output_stride=16,
                 image_pooling_crop_size=None, dropout_rate=0.1, **kwargs):
        super().__init__(**kwargs)
        self.cell = as_cell_spec(cell if cell is not None else spec_lib.published_cell())
        self.filters = filters
        self.output_stride = output_stride
        self.image_pooling_crop_size = (
            tuple(image_pooling_crop_size) if image_pooling_crop_size else None)
        self.dropout_rate = dropout_rate
        multiplier = rate_multiplier(output_stride)
        shared = dict(batch_norm_decay=self.batch_norm_decay,
                      batch_norm_epsilon=self.batch_norm_epsilon,
                      weight_decay=self.weight_decay)
        self.branches = []
        for i, branch in enumerate(self.cell.branches):
            op, name = branch.op, f"branch{i}"
            if isinstance(op, spec_lib.Conv1x1):
                layer = ops.ConvBNReLU(filters, 1, name=name, **shared)
            elif isinstance(op, spec_lib.SeparableConv):
                rate = (op.rate_h * multiplier, op.rate_w * multiplier)
                layer = ops.SeparableConvBNReLU(filters, rate, name=name, **shared)
            else:
                grid = (op.grid_h, op.grid_w)
                kernel = (ops.reference_pooling_kernel(
                    self.image_pooling_crop_size, output_stride, grid)
                    if self.image_pooling_crop_size else None)
                layer = ops.PooledConvBNReLU(filters, grid, kernel, name=name, **shared)
            self.branches.append(layer)
        self.dropout = keras.layers.Dropout(dropout_rate, name="concat_projection_dropout")
        self.projection = ops.ConvBNReLU(filters, 1, name="concat_projection", **shared)

    def build(self, input_shape):
        branch_shape = tuple(input_shape[:-1]) + (self.filters,)
        for branch, layer in zip(self.cell.branches, self.branches):
            layer.build(input_shape if branch.input < 0 else branch_shape)
        self.projection.build(tuple(input_shape[:-1]) + (self.filters * len(self.branches),))

    def call(self, inputs, training=None):
        outputs = []
        for branch, layer in zip(self.cell.branches, self.branches):
            x = inputs if branch.input < 0 else outputs[branch.input]
            outputs.append(layer(x, training=training))
        x = self.dropout(tf.concat(outputs, axis=-1), training=training)
        return self.projection(x, training=training)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.filters,)

    def get_config(self):
        config = super().get_config()
        config.update(
            cell=self.cell.to_reference(), filters=self.filters,
            output_stride=self.output_stride,
            image_pooling_crop_size=(list(self.image_pooling_crop_size)
                                     if self.image_pooling_crop_size else None),
            dropout_rate=self.dropout_rate)
        return config
