"""shipcam.evaluation: how good a model is, on a dataset (``shipcam eval``) and on labelled real scenes
(``shipcam eval-scenes``).

It sits above training (a ``.keras`` model is evaluated through it) and below
the benchmarks, which use it; nothing below imports it.
"""

from shipcam.evaluation.evaluate import evaluate
from shipcam.evaluation.scenes import evaluate_scenes, open_detector

__all__ = ["evaluate", "evaluate_scenes", "open_detector"]
