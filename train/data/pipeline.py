"""``tf.data`` input pipelines: decode, resize, augment, preprocess, batch.

Images are decoded by the same ``read_image`` the runtime uses (through
``tf.numpy_function``), so training and inference see identical pixels; the
backbone's scale/offset is applied last, as the exported metadata records it.
"""

from __future__ import annotations

import warnings

import numpy as np

from shipcam.errors import ImageError
from shipcam.runtime.image import read_image
from shipcam.train.backbones import BackboneSpec
from shipcam.train.data.sources import Samples

__all__ = ["make_dataset", "class_weights"]

_CACHE_LIMIT_BYTES = 3 * 2**30  # decode once and keep in memory below this size


def class_weights(labels: np.ndarray) -> dict[int, float]:
    """Inverse-frequency weights so both classes contribute equally to the loss."""
    labels = np.asarray(labels)
    n, n_pos = len(labels), int(labels.sum())
    if n_pos in (0, n):
        raise ValueError(f"class weights need both classes; received {n_pos} ships out of {n} images")
    return {0: n / (2.0 * (n - n_pos)), 1: n / (2.0 * n_pos)}


def _decode(path: bytes) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return read_image(path.decode())
    except ImageError as e:
        # The index already dropped unreadable files; a file that broke since is skipped
        # by ignore_errors() below (with TensorFlow's warning), never a crash mid-epoch.
        raise ValueError(str(e)) from None


def make_dataset(
    samples: Samples,
    spec: BackboneSpec,
    size: int,
    batch_size: int,
    training: bool,
    seed: int = 0,
    augment: bool | None = None,
    balanced: bool = False,
):
    """Batches of ``(x float32 (B, size, size, 3), y float32 (B, 1))``."""
    import tensorflow as tf

    augment = training if augment is None else augment
    paths = [str(p) for p in samples.paths]
    labels = samples.labels.astype(np.float32)

    def load(path, label):
        img = tf.numpy_function(_decode, [path], tf.uint8, stateful=False)
        img.set_shape([None, None, 3])
        img = tf.image.resize(tf.cast(img, tf.float32), (size, size), antialias=True)
        return img, tf.reshape(label, (1,))

    def from_slices(idx):
        ds = tf.data.Dataset.from_tensor_slices((np.array(paths)[idx], labels[idx]))
        ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE).ignore_errors(log_warning=True)
        if len(idx) * size * size * 3 * 4 < _CACHE_LIMIT_BYTES:
            ds = ds.cache()
        return ds

    if training and balanced:
        parts = [from_slices(np.flatnonzero(labels == c)).shuffle(4096, seed=seed + c).repeat() for c in (0, 1)]
        ds = tf.data.Dataset.sample_from_datasets(parts, weights=[0.5, 0.5], seed=seed)
        ds = ds.take(len(paths))  # one "epoch" = as many images as the dataset holds
    else:
        ds = from_slices(np.arange(len(paths)))
        if training:
            ds = ds.shuffle(min(len(paths), 8192), seed=seed, reshuffle_each_iteration=True)

    if augment:
        ds = ds.map(_augment_fn(seed), num_parallel_calls=tf.data.AUTOTUNE)
    scale, offset = np.float32(spec.scale), np.float32(spec.offset)
    ds = ds.map(lambda x, y: (x * scale + offset, y), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _augment_fn(seed: int):
    """Overhead imagery has no 'up': flips and 90-degree turns are free; light photometric jitter."""
    import tensorflow as tf

    rng = tf.random.Generator.from_seed(seed)

    def augment(x, y):
        s = rng.make_seeds(2)
        x = tf.image.stateless_random_flip_left_right(x, s[:, 0])
        x = tf.image.stateless_random_flip_up_down(x, s[:, 1])
        k = rng.uniform((), 0, 4, dtype=tf.int32)
        x = tf.image.rot90(x, k)
        x = x * rng.uniform((), 0.9, 1.1) + rng.uniform((), -10.0, 10.0)  # contrast/brightness in 0..255
        return tf.clip_by_value(x, 0.0, 255.0), y

    return augment
