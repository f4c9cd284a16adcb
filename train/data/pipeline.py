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
    randomize: bool = True,
    shard: tuple[int, int] | None = None,
):
    """Batches of ``(x float32 (B, size, size, 3), y float32 (B, 1))``.

    ``shard=(n, i)``: process ``i`` of ``n`` in data-parallel training, ``batch_size``
    its share of the global batch. Every process draws the same image order (the
    seed), keeps every n-th image and decodes only those, so the n local batches of
    a step are together the batch one process would have drawn. Training drops the
    last partial global batch and validation the last ``len % n`` images: each
    process must yield as many batches of the same size as the others.
    """
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

    if shard is not None:
        # No ignore_errors here: a process that skipped an image would run out of batches before the others and
        # leave them waiting on it; an image that broke since the index was read stops the run instead.
        path_t, label_t = tf.constant(paths), tf.constant(labels)
        ds = _sharded(tf, labels, training, balanced, seed, batch_size, *shard).map(
            lambda i: load(tf.gather(path_t, i), tf.gather(label_t, i)), num_parallel_calls=tf.data.AUTOTUNE
        )
    elif training and balanced:
        parts = [from_slices(np.flatnonzero(labels == c)).shuffle(4096, seed=seed + c).repeat() for c in (0, 1)]
        ds = tf.data.Dataset.sample_from_datasets(parts, weights=[0.5, 0.5], seed=seed)
        ds = ds.take(len(paths))  # one "epoch" = as many images as the dataset holds
    else:
        ds = from_slices(np.arange(len(paths)))
        if training:
            ds = ds.shuffle(min(len(paths), 8192), seed=seed, reshuffle_each_iteration=True)

    if augment:  # each shard its own draws: the same ones would pair the i-th images of every process
        ds = ds.map(_augment_fn(seed + (shard[1] if shard else 0), randomize), num_parallel_calls=tf.data.AUTOTUNE)
    scale, offset = np.float32(spec.scale), np.float32(spec.offset)
    ds = ds.map(lambda x, y: (x * scale + offset, y), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _sharded(tf, labels: np.ndarray, training: bool, balanced: bool, seed: int, local_batch: int, n: int, i: int):
    """Image indices for shard ``i`` of ``n``: the one-process order (same shuffles, same seeds), every n-th kept."""
    m = len(labels)
    if training and balanced:
        parts = [
            tf.data.Dataset.from_tensor_slices(np.flatnonzero(labels == c)).shuffle(4096, seed=seed + c).repeat()
            for c in (0, 1)
        ]
        ds = tf.data.Dataset.sample_from_datasets(parts, weights=[0.5, 0.5], seed=seed)
    else:
        ds = tf.data.Dataset.from_tensor_slices(np.arange(m))
        if training:
            ds = ds.shuffle(min(m, 8192), seed=seed, reshuffle_each_iteration=True)
    keep = m - m % (n * local_batch) if training else m - m % n
    return ds.take(keep).shard(n, i)


def _augment_fn(seed: int, randomize: bool = True):
    """Geometry: flips and 90-degree turns (overhead imagery has no 'up').

    Domain randomisation (``randomize``, the default): what differs between
    sensors, days and the synthetic generator, so a model cannot lean on it:
    brightness, contrast, saturation, hue, blur, sensor noise, JPEG
    artefacts and a scale jitter of -20%..+25% (a GSD that is never exactly
    the nominal one).
    """
    import tensorflow as tf

    rng = tf.random.Generator.from_seed(seed)
    k = tf.constant([0.25, 0.5, 0.25], tf.float32)
    blur_kernel = tf.reshape(tf.tensordot(k, k, axes=0), (3, 3, 1, 1)) * tf.ones((1, 1, 3, 1))

    def augment(x, y):
        s = rng.make_seeds(2)
        x = tf.image.stateless_random_flip_left_right(x, s[:, 0])
        x = tf.image.stateless_random_flip_up_down(x, s[:, 1])
        x = tf.image.rot90(x, rng.uniform((), 0, 4, dtype=tf.int32))
        if not randomize:
            x = x * rng.uniform((), 0.9, 1.1) + rng.uniform((), -10.0, 10.0)
            return tf.clip_by_value(x, 0.0, 255.0), y
        size = tf.shape(x)[:2]
        scale = rng.uniform((), 0.8, 1.25)
        scaled = tf.cast(tf.cast(size, tf.float32) * scale, tf.int32)
        x = tf.image.resize(x, scaled, antialias=True)
        short = tf.maximum(size - scaled, 0)  # zoomed out: mirror the edges back to full size, never black borders
        x = tf.pad(
            x, [[short[0] // 2, short[0] - short[0] // 2], [short[1] // 2, short[1] - short[1] // 2], [0, 0]], "REFLECT"
        )
        x = tf.image.resize_with_crop_or_pad(x, size[0], size[1])
        x = tf.ensure_shape(x, [None, None, 3])
        u = x / 255.0
        u = tf.image.adjust_saturation(u, rng.uniform((), 0.6, 1.4))
        u = tf.image.adjust_hue(u, rng.uniform((), -0.04, 0.04))
        mean = tf.reduce_mean(u, axis=[0, 1], keepdims=True)
        u = (u - mean) * rng.uniform((), 0.75, 1.3) + mean + rng.uniform((), -0.08, 0.08)
        x = u * 255.0
        a = rng.uniform((), 0.0, 1.0)
        x = x * (1 - a) + a * tf.nn.depthwise_conv2d(x[None], blur_kernel, [1, 1, 1, 1], "SAME")[0]
        x = x + rng.normal(tf.shape(x)) * rng.uniform((), 0.0, 6.0)
        x = tf.clip_by_value(x, 0.0, 255.0)
        # JPEG artefacts: quicklooks and web tiles are compressed; 8x8 blocking must not read as a hull.
        quality = rng.uniform((), 40, 96, dtype=tf.int32)
        jpeg = lambda: tf.image.adjust_jpeg_quality(x / 255.0, quality) * 255.0  # noqa: E731
        x = tf.cond(rng.uniform(()) < 0.3, jpeg, lambda: x)
        return tf.ensure_shape(x, [None, None, 3]), y

    return augment
