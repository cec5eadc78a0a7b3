from .class_conditional_color_shift import ClassConditionalColorShift
from .class_mix import ClassMix
from .random_blur_noise import RandomBlurNoise

__all__ = ['ClassConditionalColorShift', 'ClassMix', 'RandomBlurNoise']
