"""Stage 2 (the value head) as the lab varies it: the edits of its config
that ``experiments/value_head_shift.py`` tries one by one, and the named
recipes (:data:`STAGE2_RECIPES`) that ``compare.py --stage2-recipe`` runs
every method from. Each is a config edit through options the plugin
documents (``CalSFDASegmentor.ece_class_average``,
``ECEValueNetHead.act_cfg``, the training pipeline); the shipped recipe is
the reference's.
"""
import os.path as osp
from typing import Callable, Optional

import torch
from mmengine import Config

from mmseg_calsfda.engine.checkpoint_fit import saved_value_model

#: ``--augment``: the transforms put after ``LoadAnnotations`` (and the
#: class-conditional shift) in stage 2's training pipeline, before its
#: resize and on top of the stage's own strong colour distortion (the
#: shipped ``value_train_pipeline``): ``photometric`` adds a second colour
#: distortion (MMSeg's at its defaults) and the blur and sensor noise that
#: the shipped pipeline lacks
AUGMENTS = dict(
    none=[],
    photometric=[dict(type='PhotoMetricDistortion'),
                 dict(type='RandomBlurNoise')])


#: ``--act``: the value head's activation after its 1x1 conv
ACTIVATIONS = dict(relu='ReLU')


def with_shift(shift: dict, value_input: str, class_average: str = 'all',
               train_split: str = 'train', lr: Optional[float] = None,
               augment: str = 'none', seed: Optional[int] = None,
               act: Optional[str] = None) -> Callable[[Config], None]:
    """Inserts ``ClassConditionalColorShift`` after ``LoadAnnotations``
    (none at ``prob`` 0) and after it the ``augment`` transforms; points the
    value head at the backbone, sets what it regresses
    (``ece_class_average``), the source split it learns on
    (``<train_split>.txt``), its learning rate, the stage's seed and the
    value head's activation if asked."""

    def edit(cfg: Config) -> None:
        if lr is not None:
            cfg.optim_wrapper.optimizer.lr = lr
        if seed is not None:
            cfg.randomness = dict(cfg.get('randomness', {}), seed=seed)
        if act is not None:
            cfg.model.value_head.act_cfg = dict(type=ACTIVATIONS[act])
        if train_split != 'train':
            cfg.train_dataloader.dataset.ann_file = f'{train_split}.txt'
        pipeline = cfg.train_dataloader.dataset.pipeline
        at = [step['type'] for step in pipeline].index('LoadAnnotations')
        added = [dict(step) for step in AUGMENTS[augment]]
        if shift.get('prob', 0) > 0:
            added.insert(0, dict(type='ClassConditionalColorShift', **shift))
        pipeline[at + 1:at + 1] = added
        if class_average != 'all':
            cfg.model.ece_class_average = class_average
        if value_input == 'backbone':
            cfg.model.value_input = 'backbone'
            # the shrunk ResNet's last stage, as the decode head reads it
            head = cfg.model.value_head
            head.in_channels = cfg.model.decode_head.in_channels

    return edit


#: ``compare.py --stage2-recipe``: named stage-2 settings, as
#: :func:`with_shift` arguments (no class-conditional shift)
STAGE2_RECIPES = {
    'shipped': {},
    'present': dict(class_average='present'),
    'present-photometric': dict(class_average='present',
                                augment='photometric'),
    'present-photometric-relu': dict(class_average='present',
                                     augment='photometric', act='relu'),
}


def recipe_edit(name: str) -> Optional[Callable[[Config], None]]:
    """The config edit of a :data:`STAGE2_RECIPES` entry (None for the
    shipped recipe, which needs none)."""
    if name not in STAGE2_RECIPES:
        raise ValueError(f'unknown stage-2 recipe {name!r}; valid: '
                         f'{", ".join(STAGE2_RECIPES)}')
    if not STAGE2_RECIPES[name]:
        return None
    return with_shift(dict(prob=0.0), 'probs', **STAGE2_RECIPES[name])


def value_head_of(checkpoint: str) -> dict:
    """``value_head`` and ``value_input`` of the model a stage-2 checkpoint
    was trained as (the plugin's ``saved_value_model``), so that a
    value head built with other settings (e.g. an activation, which has no
    weights to tell it by) is evaluated as it was trained. Nothing for a
    checkpoint not yet trained (a config built before its stage 2 runs: the
    plugin's runner then refuses a head trained otherwise when it loads)."""
    if not osp.isfile(checkpoint):
        return {}
    model = saved_value_model(
        torch.load(checkpoint, map_location='cpu', weights_only=False)) or {}
    return {key: model[key] for key in ('value_head', 'value_input')
            if model.get(key) is not None}
