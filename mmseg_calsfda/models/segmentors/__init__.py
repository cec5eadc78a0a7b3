from .calsfda_segmentor import CalSFDASegmentor, has_value_head

__all__ = ['CalSFDASegmentor', 'has_value_head']
