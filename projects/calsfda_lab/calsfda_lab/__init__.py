"""The Cal-SFDA lab: the comparison against baselines, the experiments and
what they vary, on the procedural benchmark. Not part of the plugin.

Importing it registers the lab's benchmark presets (``'swap'``, ``'hard'``,
``'below'``), its transforms (``ClassMix``, ``ClassConditionalColorShift``)
and its stage-3 variant components (``VariantSelfTrainingHook``,
``UniformWeightPseudoLabeler``) next to the plugin's, so a config or a
script that names them imports ``calsfda_lab`` (the lab's scripts do).
"""
import mmseg_calsfda  # noqa: F401  the plugin's components first

from . import presets, transforms, variants  # noqa: F401
