from .calsfda_segmentor import CalSFDASegmentor

__all__ = ['CalSFDASegmentor']
