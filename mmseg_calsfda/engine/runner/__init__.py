from .calsfda_runner import CalSFDARunner

__all__ = ['CalSFDARunner']
