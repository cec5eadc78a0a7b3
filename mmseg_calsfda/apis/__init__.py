"""Inference with a Cal-SFDA model (``from mmseg_calsfda.apis import
CalSFDAInferencer``)."""
from .calsfda_inferencer import (
    EST_ECE_PERCENT,
    CalSFDAInferencer,
    MissingValueHeadError,
    inference_pipeline,
)

__all__ = ['CalSFDAInferencer', 'EST_ECE_PERCENT', 'MissingValueHeadError',
           'inference_pipeline']
