"""Small runs of the shipped configs, for the demo, the lab and the tests.

Nothing in the library imports this package (``custom_imports`` of
``mmseg_calsfda`` does not load it). It holds

* :mod:`.shrink`: the one config shrinker -- a shipped stage config at CPU
  size on the procedural benchmark (:func:`shrink_config`,
  :func:`tiny_config` for the tests' few-iteration runs);
* :mod:`.demo_stages`: the three stages of ``tools/demo.py`` as functions,
  which the lab's comparison and experiments reuse;
* :mod:`.reference`: slow, loop-based re-expressions of the calibration
  measures that the tests and the ECE-loss benchmark compare against.
"""
from .shrink import (
    CONFIGS,
    ROOT,
    load_stage_config,
    resize_resnet,
    set_run_name,
    shrink_config,
    tiny_config,
)

__all__ = [
    'CONFIGS', 'ROOT', 'load_stage_config', 'resize_resnet', 'set_run_name',
    'shrink_config', 'tiny_config'
]
