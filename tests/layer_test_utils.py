"""One shared test for every Keras layer of the package (keras-hub style).

config -> JSON -> from_config; serialize/deserialize; explicit build; symbolic
call; eager call; one training step; `.keras` save/load with equal outputs.
"""
import inspect
import json
import os

import keras
import numpy as np


def _constructor_args(cls):
    args = set()
    for klass in inspect.getmro(cls):
        if klass is keras.layers.Layer:
            break
        if "__init__" in vars(klass):
            for name, p in inspect.signature(klass.__init__).parameters.items():
                if name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                    args.add(name)
    return args


def _model(layer, input_shapes):
    if isinstance(input_shapes, list):
        inputs = [keras.Input(s[1:], batch_size=s[0]) for s in input_shapes]
    else:
        inputs = keras.Input(input_shapes[1:], batch_size=input_shapes[0])
    return keras.Model(inputs, layer(inputs))


def _random(shapes, rng):
    if isinstance(shapes, list):
        return [rng.normal(size=s).astype("float32") for s in shapes]
    return rng.normal(size=shapes).astype("float32")


def run_layer_test(cls, init_kwargs, input_shape, expected_output_shape, tmp_path,
                   expected_num_trainable_weights=None):
    """Checks one layer end to end; returns the layer built by the first step."""
    rng = np.random.default_rng(0)
    layer = cls(**init_kwargs)

    # Config: every constructor argument, JSON-safe, and from_config rebuilds it.
    config = layer.get_config()
    missing = _constructor_args(cls) - set(config)
    assert not missing, f"get_config misses constructor args {missing}"
    restored = cls.from_config(json.loads(json.dumps(config)))
    assert restored.get_config() == config
    revived = keras.saving.deserialize_keras_object(
        json.loads(json.dumps(keras.saving.serialize_keras_object(layer))))
    assert type(revived) is cls and revived.get_config() == config

    # Explicit build creates every weight without a call.
    built = cls.from_config(config)
    built.build(input_shape)
    assert built.built and built.weights
    if expected_num_trainable_weights is not None:
        assert len(built.trainable_weights) == expected_num_trainable_weights

    # Symbolic and eager calls agree on the shape.
    model = _model(layer, input_shape)
    assert tuple(model.output.shape) == tuple(expected_output_shape)
    x = _random(input_shape, rng)
    y = model(x, training=False)
    assert tuple(y.shape) == tuple(expected_output_shape)
    assert len(built.weights) == len(layer.weights)

    # One training step moves the trainable weights and the BN statistics.
    before = [w.numpy().copy() for w in layer.weights]
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    model.fit(x, rng.normal(size=expected_output_shape).astype("float32"),
              epochs=1, batch_size=input_shape[0] if not isinstance(input_shape, list)
              else input_shape[0][0], verbose=0)
    changed = {w.path for w, b in zip(layer.weights, before)
               if not np.array_equal(w.numpy(), b)}
    frozen = [w.path for w in layer.trainable_weights if w.path not in changed]
    assert not frozen, f"trainable weights did not move: {frozen}"
    assert any("moving_mean" in p for p in changed), "BN statistics did not update"

    # `.keras` round trip: same config, same outputs.
    path = os.path.join(str(tmp_path), "layer.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded(x, training=False), model(x, training=False),
                               rtol=1e-6, atol=1e-6)
    return layer
