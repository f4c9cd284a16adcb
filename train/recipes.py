"""Training recipes: the settings ``shipcam demo`` trains with, and ``benchmarks.loso`` after it.

``demo_recipe`` is transfer learning when there are ImageNet weights
(``auto_weights`` finds them), else a small model from scratch; with labelled
real scenes, half the training chips come from them.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["AUTO", "GSD_RANGE", "SHARED_WEIGHTS", "SYNTHETIC_SCENES", "auto_weights", "demo_recipe"]

# Synthetic scenes the demo draws beside the real scenes' chips, which add about as many again; without
# real scenes it draws twice this, so it trains on as many images (docs/decisions/034).
SYNTHETIC_SCENES = 800

# Beside a checkout: the project's copy of the ImageNet MobileNetV2 (the repository carries the same file).
SHARED_WEIGHTS = (
    Path(__file__).resolve().parents[1] / ".." / "shared" / "weights" / "mobilenet_v2_1.0_imagenet_no_top.weights.h5"
)
AUTO = "auto"
GSD_RANGE = [1.5, 3.0]  # Airbus/SPOT to PlanetScope: one model for both, no resampling inside it


def auto_weights() -> str | None:
    """What ``--weights auto`` trains from: the bundled ImageNet file, ``../shared``'s copy, Keras' download, or None
    (from scratch).
    """
    from shipcam.train.backbones import BUNDLED_WEIGHTS

    for path in (BUNDLED_WEIGHTS, SHARED_WEIGHTS):
        if path.is_file():
            return str(path)
    try:  # a user's machine with internet: Keras' own copy, cached under ~/.keras
        import keras

        keras.applications.MobileNetV2(include_top=False, weights="imagenet", input_shape=(224, 224, 3))
        return "imagenet"
    except Exception as e:  # offline, or a download that failed: the scratch recipe
        print(f"note: no ImageNet weights ({type(e).__name__}): the demo trains from scratch", flush=True)
        return None


def demo_recipe(
    weights: str | None, quick: bool = False, scenes: Path | None = None, labels: Path | None = None
) -> dict:
    """The demo's training settings: transfer learning when there are ImageNet weights, else from scratch.

    With weights: MobileNetV2 1.0 cut at stride 16 (its CAM peak lands on the ship: pointing game 0.87 against 0.38 at
    stride 32, docs/decisions/030-stride-16-features.md), 224 px, scenes drawn across 1.5-3 m/px, head then the top 30
    layers. With labelled real ``scenes`` (``../shared/realdata`` beside a checkout), half the training chips come from
    them and one round of hard-negative mining follows; without them, twice the synthetic scenes.
    ``weights="auto"``: see ``auto_weights``; the quick demo (the test suite's) trains from scratch.
    """
    if weights == AUTO:
        weights = None if quick else auto_weights()
    common = dict(
        weights=weights,
        batch_size=16,
        verbose="auto",
        calibration_scenes=2 if quick else 16,
        steps_per_epoch=4 if quick else None,
    )
    if scenes is not None:
        common.update(
            scenes=[str(scenes)],
            real_labels=str(labels),
            real_ratio=0.5,
            mining_rounds=1,
            mining_epochs=1 if quick else 2,
        )
    if quick:
        return dict(
            common,
            size=64,
            synthetic_n=160,
            alpha=0.35 if weights is None else 1.0,
            head_epochs=1,
            finetune_epochs=1,
            scratch_epochs=2,
        )
    if weights is None:
        return dict(common, size=96, synthetic_n=2000, alpha=0.35, scratch_epochs=20)
    return dict(
        common,
        backbone="mobilenet_v2_s16",
        size=224,
        synthetic_n=SYNTHETIC_SCENES if scenes is not None else 2 * SYNTHETIC_SCENES,
        alpha=1.0,
        gsd_range=GSD_RANGE,
        head_epochs=2,
        finetune_epochs=3,
        finetune_layers=30,
    )
