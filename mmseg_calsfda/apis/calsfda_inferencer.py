from typing import List, Optional

import numpy as np
import torch.nn as nn
from mmengine.config import Config, ConfigDict
from mmseg.apis import MMSegInferencer
from mmseg.utils import SampleList

from ..config_refs import resolve_references
from ..models.segmentors import has_value_head

#: The key of the estimated ECE, in percent, in :class:`CalSFDAInferencer`'s
#: results (and the column of the tools' CSV files).
EST_ECE_PERCENT = 'est_ece_percent'


def inference_pipeline(cfg: Config) -> list:
    """The pipeline a config's model predicts with: its test dataloader's,
    else its ``test_pipeline``, else its (validation) dataloader's -- a
    stage config without labelled test data, such as the folder target
    (``configs/calsfda/deeplabv2_gta2folder.py``), validates on unlabelled
    images with the pipeline inference needs. ``'${key}'`` references are
    resolved; ``LoadAnnotations`` is left out.

    Args:
        cfg (Config): A loaded config.

    Returns:
        list: The transforms, as configs.

    Raises:
        ValueError: The config has none of the three.
    """
    cfg = resolve_references(cfg)
    loader = cfg.get('test_dataloader') or cfg.get('val_dataloader')
    if cfg.get('test_dataloader'):
        pipeline = loader['dataset']['pipeline']
    elif cfg.get('test_pipeline'):
        pipeline = cfg.test_pipeline
    elif loader:
        pipeline = loader['dataset']['pipeline']
    else:
        raise ValueError('the config has no test_dataloader, test_pipeline '
                         'or val_dataloader to take the inference pipeline '
                         'from')
    return [step for step in pipeline
            if step['type'] != 'LoadAnnotations']


class MissingValueHeadError(ValueError):
    """A model with a value head was given a checkpoint without one."""


class CalSFDAInferencer(MMSegInferencer):
    """MMSeg's inferencer for a Cal-SFDA model: its results also give each
    image's estimated ECE, in percent.

    A :class:`CalSFDASegmentor` with a value head puts its estimate into each
    prediction's metainfo as ``est_ece``: a fraction in [0, 1], the value
    head's output, which the pseudo-labeller scales by.
    :class:`MMSegInferencer`'s default results (``predictions``,
    ``visualization``) leave it out; here they carry ``est_ece_percent``
    too (a float per image; one image: a float, as ``predictions`` is one
    array), in percent as every number the tools print or write.
    ``return_datasamples=True`` gives MMSeg's data samples unchanged, with
    the fraction ``est_ece``.

    A model with a value head must be given a checkpoint that has the
    value head's weights (stage 2 or 3): a randomly initialised head would
    give meaningless estimates, so other checkpoints are refused.

    Args:
        See :class:`mmseg.apis.MMSegInferencer` (``model``: a config file
        or ``Config``, ``weights``: the checkpoint, ``device``, ...).
    """

    def _init_pipeline(self, cfg: ConfigDict):
        """MMSeg's pipeline set-up, on :func:`inference_pipeline` (a
        config without test data, e.g. the folder target, works too)."""
        cfg = Config(cfg.to_dict() if hasattr(cfg, 'to_dict') else cfg)
        cfg.test_dataloader = dict(dataset=dict(
            pipeline=inference_pipeline(cfg)))
        return super()._init_pipeline(cfg)

    def _load_weights_to_model(self, model: nn.Module,
                               checkpoint: Optional[dict],
                               cfg: Optional[ConfigDict]) -> None:
        """MMSeg's loading; refuses a checkpoint without the value head
        that the model has."""
        if (checkpoint is not None
                and getattr(model, 'with_value_head', False)
                and not has_value_head(checkpoint)):
            raise MissingValueHeadError(
                'the model has a value head but the checkpoint has no value '
                'head weights: give a stage-2 or stage-3 checkpoint, or a '
                'config without value_head (model.value_head=None)')
        super()._load_weights_to_model(model, checkpoint, cfg)

    def postprocess(self,
                    preds: SampleList,
                    visualization: Optional[List[np.ndarray]],
                    return_datasample: bool = False,
                    pred_out_dir: str = '') -> dict:
        """MMSeg's results, plus :data:`EST_ECE_PERCENT` when the
        predictions carry ``est_ece`` (see the class docstring)."""
        results = super().postprocess(preds, visualization,
                                      return_datasample, pred_out_dir)
        if return_datasample or not preds or not all('est_ece' in p
                                                     for p in preds):
            return results
        estimates = [float(p.est_ece) * 100 for p in preds]
        results[EST_ECE_PERCENT] = estimates[0] if len(
            estimates) == 1 else estimates
        return results
