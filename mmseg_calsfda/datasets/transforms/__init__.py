from .class_conditional_color_shift import ClassConditionalColorShift

__all__ = ['ClassConditionalColorShift']
