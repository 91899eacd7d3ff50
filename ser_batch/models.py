"""Keras model builders by name. Every model takes (frames, coeffs) input and returns class probabilities.

- ``seed``: the origin's CNN over the flat feature vector (frames x coeffs reshaped to one long sequence).
- ``frames``: the same blocks convolving over time, with the coefficients as channels (about 20x less work).
- ``attn``: a compact 1-D CNN over time (residual-free, 4 blocks of 128-256 channels) whose frames are pooled by
  learned attention plus mean and max pooling, so the verdict weighs the emotional stretches of a window.
- ``cnn2d``: a small 2-D CNN over the (time x coefficient) plane, pooled over frequency, then attention over time.
- ``pool``: for frames that are already rich embeddings (``whisper_base``): one shared dense projection per frame,
  then attention, mean and max pooling over time and a small classifier.

Only built-in layers are used, so saved models load in Keras safe mode without custom objects.
"""

from __future__ import annotations

from collections.abc import Callable

from ser_batch.errors import ConfigError

MODELS = ("frames", "seed", "attn", "cnn2d", "pool")


def build(name: str, n_frames: int, n_coeffs: int, n_classes: int, learning_rate: float = 1e-3, label_smoothing: float = 0.0):  # type: ignore[no-untyped-def]
    """Build and compile the named model."""
    import keras

    builders: dict[str, Callable[[int, int, int], keras.Model]] = {"seed": _seed, "frames": _frames, "attn": _attn, "cnn2d": _cnn2d, "pool": _pool}
    if name not in builders:
        raise ConfigError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    model = builders[name](n_frames, n_coeffs, n_classes)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
        metrics=["accuracy"],
    )
    return model


def _seed_blocks(x, pools: tuple[int, ...]):  # type: ignore[no-untyped-def]
    """The seed's five convolution blocks; ``pools`` are the pool sizes (5, 5, 5, 5, 3 in the seed)."""
    from keras import layers

    spec = [(512, 5, False), (512, 5, True), (256, 5, False), (256, 3, True), (128, 3, True)]
    for (filters, kernel, dropout), pool in zip(spec, pools):
        x = layers.Conv1D(filters, kernel, padding="same", activation="relu")(x)
        x = layers.BatchNormalization()(x)
        x = layers.MaxPooling1D(pool, strides=2, padding="same")(x)
        if dropout:
            x = layers.Dropout(0.2)(x)
    return x


def _head(x, n_classes: int):  # type: ignore[no-untyped-def]
    from keras import layers

    x = layers.Flatten()(x)
    x = layers.Dense(512, activation="relu")(x)
    x = layers.BatchNormalization()(x)
    return layers.Dense(n_classes, activation="softmax")(x)


def _seed(n_frames: int, n_coeffs: int, n_classes: int):  # type: ignore[no-untyped-def]
    import keras
    from keras import layers

    inp = keras.Input((n_frames, n_coeffs), name="features")
    x = layers.Reshape((n_frames * n_coeffs, 1))(inp)
    return keras.Model(inp, _head(_seed_blocks(x, (5, 5, 5, 5, 3)), n_classes), name="seed")


def _frames(n_frames: int, n_coeffs: int, n_classes: int):  # type: ignore[no-untyped-def]
    import keras

    inp = keras.Input((n_frames, n_coeffs), name="features")
    return keras.Model(inp, _head(_seed_blocks(inp, (5, 5, 5, 5, 3)), n_classes), name="frames")


def _attention_pool(x):  # type: ignore[no-untyped-def]
    """Attention, mean and max pooling over time of (batch, time, channels), with built-in layers only."""
    from keras import layers

    scores = layers.Dense(1)(layers.Dense(64, activation="tanh")(x))
    weights = layers.Softmax(axis=1)(scores)
    attended = layers.Flatten()(layers.Dot(axes=1)([weights, x]))
    return layers.Concatenate()([attended, layers.GlobalAveragePooling1D()(x), layers.GlobalMaxPooling1D()(x)])


def _conv_bn(x, filters: int, kernel, conv):  # type: ignore[no-untyped-def]
    from keras import layers

    x = conv(filters, kernel, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    return layers.Activation("relu")(x)


def _classifier(x, n_classes: int):  # type: ignore[no-untyped-def]
    from keras import layers

    x = layers.Dropout(0.3)(x)
    x = layers.Dense(128, activation="relu")(x)
    x = layers.Dropout(0.3)(x)
    return layers.Dense(n_classes, activation="softmax")(x)


def _attn(n_frames: int, n_coeffs: int, n_classes: int):  # type: ignore[no-untyped-def]
    import keras
    from keras import layers

    inp = keras.Input((n_frames, n_coeffs), name="features")
    x = inp
    for filters, kernel in ((128, 5), (128, 5), (256, 3), (256, 3)):
        x = _conv_bn(x, filters, kernel, layers.Conv1D)
        x = layers.MaxPooling1D(2, padding="same")(x)
        x = layers.SpatialDropout1D(0.1)(x)
    return keras.Model(inp, _classifier(_attention_pool(x), n_classes), name="attn")


def _cnn2d(n_frames: int, n_coeffs: int, n_classes: int):  # type: ignore[no-untyped-def]
    import keras
    from keras import layers

    inp = keras.Input((n_frames, n_coeffs), name="features")
    x = layers.Reshape((n_frames, n_coeffs, 1))(inp)
    for filters in (24, 48, 96, 128):
        x = _conv_bn(x, filters, 3, layers.Conv2D)
        x = layers.MaxPooling2D(2, padding="same")(x)
        x = layers.SpatialDropout2D(0.1)(x)
    x = layers.Reshape((x.shape[1], x.shape[2] * x.shape[3]))(x)  # (time, freq x channels)
    x = _conv_bn(x, 192, 1, layers.Conv1D)
    return keras.Model(inp, _classifier(_attention_pool(x), n_classes), name="cnn2d")


def _pool(n_frames: int, n_coeffs: int, n_classes: int):  # type: ignore[no-untyped-def]
    import keras
    from keras import layers

    inp = keras.Input((n_frames, n_coeffs), name="features")
    x = layers.Dropout(0.2)(inp)
    x = layers.Dense(256, activation="relu")(x)
    x = layers.Dropout(0.2)(x)
    return keras.Model(inp, _classifier(_attention_pool(x), n_classes), name="pool")
