"""Keras model builders by name. Every model takes (frames, coeffs) input and returns class probabilities.

- ``seed``: the origin's CNN over the flat feature vector (frames x coeffs reshaped to one long sequence).
- ``frames``: the same blocks convolving over time, with the coefficients as channels (about 20x less work).
- ``attn``: a compact 1-D CNN over time (residual-free, 4 blocks of 128-256 channels) whose frames are pooled by
  learned attention plus mean and max pooling, so the verdict weighs the emotional stretches of a window.
- ``pool``: for frames that are already rich embeddings (``whisper_base``): one shared dense projection per frame,
  then attention, mean and max pooling over time and a small classifier.
- ``linear``: a logistic regression (L2) over each coefficient's mean and mean square across the window's frames:
  the linear probe of ``benchmarks/probe.py`` inside the product, for features that must carry across corpora.
  With ``frames="inside"`` the means leave out the frames past a recording's end (a built-in ``Masking`` layer).

Only built-in layers are used, so saved models load in Keras safe mode without custom objects. Every random
initialiser and dropout layer gets its seed from ``build``'s ``seed``: Keras draws unseeded ones from Python's global
``random``, which a Dask worker's own threads draw from too, so the same job on the same machine gave another model
(fold-1 UAR 0.676 to 0.746 over four runs).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable

from ser_batch.errors import ConfigError

MODELS = ("frames", "seed", "attn", "pool", "linear")


class Seeds:
    """A model's seeds, one per random layer in building order: the same ``seed`` builds the same weights."""

    def __init__(self, seed: int) -> None:
        self._next = itertools.count(seed * 100_000 + 1)

    def __call__(self) -> int:
        return next(self._next)

    def kernel(self):  # type: ignore[no-untyped-def]
        """Keras's default kernel initialiser (Glorot uniform), seeded."""
        import keras

        return keras.initializers.GlorotUniform(seed=self())


def build(name: str, n_frames: int, n_coeffs: int, n_classes: int, learning_rate: float = 1e-3, label_smoothing: float = 0.0, seed: int = 0, loss: Callable | None = None, l2: float = 1e-3, frames: str = "all"):  # type: ignore[no-untyped-def]
    """Build and compile the named model; ``seed`` fixes its initial weights and dropout masks.

    ``loss``: a training-time loss in place of categorical cross-entropy (``objective.masked_crossentropy``, which then
    does its own label smoothing). The model is the same softmax either way, and model dirs save it uncompiled, so a
    saved model never needs the loss to load. ``l2``: the ``linear`` model's L2 penalty on its weights (others have
    none). ``frames`` ``inside`` (``linear`` only): frames that are exactly 0 after standardisation, the ones past a
    recording's end (``windows.past_end``, ``Scaler.transform``), are masked out of the window's moments.
    """
    import keras

    builders: dict[str, Callable[[int, int, int, Seeds], keras.Model]] = {"seed": _seed, "frames": _frames, "attn": _attn, "pool": _pool, "linear": functools.partial(_linear, l2=l2, masked=frames == "inside")}
    if name not in builders:
        raise ConfigError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    if frames != "all" and name != "linear":
        raise ConfigError(f"frames {frames!r} needs the linear model, which pools each window's frames by their mean; {name!r} reads them all")
    model = builders[name](n_frames, n_coeffs, n_classes, Seeds(seed))
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=loss if loss is not None else keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
        metrics=["accuracy"],
    )
    return model


def _seed_blocks(x, pools: tuple[int, ...], s: Seeds):  # type: ignore[no-untyped-def]
    """The seed's five convolution blocks; ``pools`` are the pool sizes (5, 5, 5, 5, 3 in the seed)."""
    from keras import layers

    spec = [(512, 5, False), (512, 5, True), (256, 5, False), (256, 3, True), (128, 3, True)]
    for (filters, kernel, dropout), pool in zip(spec, pools):
        x = layers.Conv1D(filters, kernel, padding="same", activation="relu", kernel_initializer=s.kernel())(x)
        x = layers.BatchNormalization()(x)
        x = layers.MaxPooling1D(pool, strides=2, padding="same")(x)
        if dropout:
            x = layers.Dropout(0.2, seed=s())(x)
    return x


def _head(x, n_classes: int, s: Seeds):  # type: ignore[no-untyped-def]
    from keras import layers

    x = layers.Flatten()(x)
    x = layers.Dense(512, activation="relu", kernel_initializer=s.kernel())(x)
    x = layers.BatchNormalization()(x)
    return layers.Dense(n_classes, activation="softmax", kernel_initializer=s.kernel())(x)


def _seed(n_frames: int, n_coeffs: int, n_classes: int, s: Seeds):  # type: ignore[no-untyped-def]
    import keras
    from keras import layers

    inp = keras.Input((n_frames, n_coeffs), name="features")
    x = layers.Reshape((n_frames * n_coeffs, 1))(inp)
    return keras.Model(inp, _head(_seed_blocks(x, (5, 5, 5, 5, 3), s), n_classes, s), name="seed")


def _frames(n_frames: int, n_coeffs: int, n_classes: int, s: Seeds):  # type: ignore[no-untyped-def]
    import keras

    inp = keras.Input((n_frames, n_coeffs), name="features")
    return keras.Model(inp, _head(_seed_blocks(inp, (5, 5, 5, 5, 3), s), n_classes, s), name="frames")


def _attention_pool(x, s: Seeds):  # type: ignore[no-untyped-def]
    """Attention, mean and max pooling over time of (batch, time, channels), with built-in layers only."""
    from keras import layers

    scores = layers.Dense(1, kernel_initializer=s.kernel())(layers.Dense(64, activation="tanh", kernel_initializer=s.kernel())(x))
    weights = layers.Softmax(axis=1)(scores)
    attended = layers.Flatten()(layers.Dot(axes=1)([weights, x]))
    return layers.Concatenate()([attended, layers.GlobalAveragePooling1D()(x), layers.GlobalMaxPooling1D()(x)])


def _conv_bn(x, filters: int, kernel: int, s: Seeds):  # type: ignore[no-untyped-def]
    from keras import layers

    x = layers.Conv1D(filters, kernel, padding="same", use_bias=False, kernel_initializer=s.kernel())(x)
    x = layers.BatchNormalization()(x)
    return layers.Activation("relu")(x)


def _classifier(x, n_classes: int, s: Seeds):  # type: ignore[no-untyped-def]
    from keras import layers

    x = layers.Dropout(0.3, seed=s())(x)
    x = layers.Dense(128, activation="relu", kernel_initializer=s.kernel())(x)
    x = layers.Dropout(0.3, seed=s())(x)
    return layers.Dense(n_classes, activation="softmax", kernel_initializer=s.kernel())(x)


def _attn(n_frames: int, n_coeffs: int, n_classes: int, s: Seeds):  # type: ignore[no-untyped-def]
    import keras
    from keras import layers

    inp = keras.Input((n_frames, n_coeffs), name="features")
    x = inp
    for filters, kernel in ((128, 5), (128, 5), (256, 3), (256, 3)):
        x = _conv_bn(x, filters, kernel, s)
        x = layers.MaxPooling1D(2, padding="same")(x)
        x = layers.SpatialDropout1D(0.1, seed=s())(x)
    return keras.Model(inp, _classifier(_attention_pool(x, s), n_classes, s), name="attn")


def _pool(n_frames: int, n_coeffs: int, n_classes: int, s: Seeds):  # type: ignore[no-untyped-def]
    import keras
    from keras import layers

    inp = keras.Input((n_frames, n_coeffs), name="features")
    x = layers.Dropout(0.2, seed=s())(inp)
    x = layers.Dense(256, activation="relu", kernel_initializer=s.kernel())(x)
    x = layers.Dropout(0.2, seed=s())(x)
    return keras.Model(inp, _classifier(_attention_pool(x, s), n_classes, s), name="pool")


def _linear(n_frames: int, n_coeffs: int, n_classes: int, s: Seeds, l2: float = 1e-3, masked: bool = False):  # type: ignore[no-untyped-def]
    import keras
    from keras import layers

    inp = keras.Input((n_frames, n_coeffs), name="features")
    x = layers.Masking(0.0)(inp) if masked else inp  # all-zero frames (past the recording's end) left out of the means
    stats = layers.Concatenate()([layers.GlobalAveragePooling1D()(x), layers.GlobalAveragePooling1D()(layers.Multiply()([x, x]))])
    x = layers.Dropout(0.2, seed=s())(layers.BatchNormalization()(stats))
    out = layers.Dense(n_classes, activation="softmax", kernel_initializer=s.kernel(), kernel_regularizer=keras.regularizers.L2(l2))(x)
    return keras.Model(inp, out, name="linear")
