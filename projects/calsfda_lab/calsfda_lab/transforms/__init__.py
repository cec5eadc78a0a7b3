from .class_conditional_color_shift import ClassConditionalColorShift
from .class_mix import ClassMix

__all__ = ['ClassConditionalColorShift', 'ClassMix']
