"""The exported graph: one image input, two named outputs, in a frozen SavedModel.

Two traps shape this module:

- Keras 3 variables survive TFLite conversion as ``READ_VARIABLE`` ops that
  the int8 calibrator cannot run ("variable != nullptr"), from a SavedModel and
  from concrete functions alike; so variables are frozen into constants first.
- Calling a frozen function flattens its outputs (``output_0``, ``output_1``);
  they are packed back into the ``{"logits", "features"}`` dict so the
  ``serving_default`` signature (and tf2onnx) carries the names.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["INPUT_NAME", "save_two_output_savedmodel", "serving_function"]

INPUT_NAME = "image"


def serving_function(model, size: int | None, batch: int | None = None):
    """A frozen ``tf.function`` image -> {"logits", "features"}; ``size=None`` keeps height/width dynamic."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    from shipcam.train.model import two_output_model

    two = two_output_model(model)
    spec = tf.TensorSpec([batch, size, size, 3], tf.float32, name=INPUT_NAME)

    @tf.function(input_signature=[spec])
    def live(image):
        out = two(image, training=False)
        return {"logits": out["logits"], "features": out["features"]}

    concrete = live.get_concrete_function()
    frozen = convert_variables_to_constants_v2(concrete)
    structure = concrete.structured_outputs

    @tf.function(input_signature=[spec])
    def serve(image):
        flat = frozen(image)
        flat = flat if isinstance(flat, (list, tuple)) else tf.nest.flatten(flat)
        packed = tf.nest.pack_sequence_as(structure, list(flat))
        return {
            "logits": tf.identity(packed["logits"], name="logits"),
            "features": tf.identity(packed["features"], name="features"),
        }

    return serve


def save_two_output_savedmodel(model, directory: str | Path, size: int | None, batch: int | None = None) -> Path:
    import tensorflow as tf

    serve = serving_function(model, size, batch)
    module = tf.Module()
    module.serve = serve
    tf.saved_model.save(module, str(directory), signatures={"serving_default": serve})
    return Path(directory)
