"""Keras model builders by name. Every model takes (frames, coeffs) input and returns class probabilities.

- ``seed``: the origin's CNN over the flat feature vector (frames x coeffs reshaped to one long sequence).
- ``frames``: the same blocks convolving over time, with the coefficients as channels (about 20x less work).

Only built-in layers are used, so saved models load in Keras safe mode without custom objects.
"""

from __future__ import annotations

from collections.abc import Callable

from ser_batch.errors import ConfigError

MODELS = ("frames", "seed")


def build(name: str, n_frames: int, n_coeffs: int, n_classes: int, learning_rate: float = 1e-3):  # type: ignore[no-untyped-def]
    """Build and compile the named model."""
    import keras

    builders: dict[str, Callable[[int, int, int], keras.Model]] = {"seed": _seed, "frames": _frames}
    if name not in builders:
        raise ConfigError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    model = builders[name](n_frames, n_coeffs, n_classes)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="categorical_crossentropy",
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
