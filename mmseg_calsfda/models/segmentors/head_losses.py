"""Where a stage's losses go in any MMSeg network's heads.

A Cal-SFDA stage changes the losses of a network it does not define: stage 1
adds the calibration loss (DiffECE), stage 3 trains on pseudo-labels with
its own losses. :class:`CalSFDASegmentor` takes them as arguments and places
them here, in the config of the head that makes the network's *final
semantic logits*, before the heads are built, so the heads' own loss code
(resizing, ignore index, pixel samplers) computes them:

* one decode head: that head's ``loss_decode``;
* a cascade (``num_stages``: OCRNet, PointRend): the last head's (PointRend's
  ``PointHead`` computes it on the sampled points' logits);
* K-Net (``IterativeDecodeHead``): the ``kernel_generate_head``'s, which
  K-Net applies to the logits of every kernel-update stage, the last one
  included;
* auxiliary heads: optionally the calibration loss too; in stage 3 either
  their losses are replaced (to train them on the pseudo-labels), or they
  are removed. A cascade's earlier stages (OCRNet's FCN head) are treated
  alike, except that ``'off'`` keeps them (the next stage reads their
  output) without a loss of their own.

Query-based heads (MaskFormer, Mask2Former) output per-query masks and class
scores, not per-pixel class logits; they are refused with the alternative.
"""
import copy
from typing import List, Optional, Tuple, Union

CfgList = Union[dict, List[dict], None]

DEFAULT_LOSS = dict(
    type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)
QUERY_HEADS = ('Mask2FormerHead', 'MaskFormerHead')
AUXILIARY_MODES = ('keep', 'off')


def check_head(head_cfg: dict, key: str = 'model.decode_head') -> None:
    """Raises ``ValueError`` for a head without per-pixel class logits."""
    head_type = head_cfg.get('type')
    if head_type in QUERY_HEADS:
        raise ValueError(
            f"{key}.type = {head_type!r}: a query-based head predicts masks "
            'and per-query class scores, not per-pixel class logits, so '
            'Cal-SFDA has nothing to calibrate, estimate or threshold. Keep '
            'the backbone and use a per-pixel decode head instead, e.g. '
            "dict(type='UPerHead', ...) or dict(type='FPNHead', ...) on a "
            'neck, as in mmseg::_base_/models/upernet_swin.py')


def final_head(decode_head: CfgList) -> dict:
    """The config of the head that makes the final semantic logits."""
    return decode_head[-1] if isinstance(decode_head, list) else decode_head


def _loss_owner(head_cfg: dict) -> dict:
    """The (sub-)config whose ``loss_decode`` supervises the logits."""
    if head_cfg.get('type') == 'IterativeDecodeHead':
        return head_cfg['kernel_generate_head']
    return head_cfg


def _losses(head_cfg: dict) -> List[dict]:
    losses = _loss_owner(head_cfg).get('loss_decode', DEFAULT_LOSS)
    return list(losses) if isinstance(losses, (list, tuple)) else [losses]


def _set_losses(head_cfg: dict, losses: List[dict]) -> None:
    _loss_owner(head_cfg)['loss_decode'] = [dict(loss) for loss in losses]


def _replace_losses(head_cfg: dict, losses: List[dict]) -> None:
    """New losses, without the head's pixel sampler: an OHEM sampler
    (STDC, BiSeNet) would index classes by the pseudo-labels' padding
    value, and the pseudo-label losses weigh pixels themselves."""
    _set_losses(head_cfg, losses)
    _loss_owner(head_cfg).pop('sampler', None)


def _as_list(cfg: CfgList) -> List[dict]:
    if cfg is None:
        return []
    return list(cfg) if isinstance(cfg, (list, tuple)) else [cfg]


def with_head_losses(
        decode_head: CfgList,
        auxiliary_head: CfgList = None,
        calibration_loss: Optional[dict] = None,
        calibrate_auxiliary: bool = False,
        decode_losses: Optional[List[dict]] = None,
        auxiliary_losses: Union[str, List[dict]] = 'keep'
) -> Tuple[CfgList, CfgList]:
    """Head configs with a stage's losses in place (copies).

    Args:
        decode_head (dict | list[dict]): The decode head, or a cascade's.
        auxiliary_head (dict | list[dict], optional): Auxiliary heads.
        calibration_loss (dict, optional): Appended to the final head's
            losses (e.g. ``DiffECELoss``).
        calibrate_auxiliary (bool): Append it to the auxiliary heads' (and
            earlier cascade stages') losses too.
        decode_losses (list[dict], optional): Replace the final head's
            losses (stage 3), dropping its pixel sampler.
        auxiliary_losses (str | list[dict]): ``'keep'`` the auxiliary
            heads' (and earlier cascade stages') own losses, turn them
            ``'off'`` (no auxiliary head; earlier stages without a loss), or
            replace their losses with these.

    Returns:
        tuple: ``(decode_head, auxiliary_head)`` configs.
    """
    decode_head = copy.deepcopy(decode_head)
    auxiliary_head = copy.deepcopy(auxiliary_head)
    heads = decode_head if isinstance(decode_head, list) else [decode_head]
    for i, head in enumerate(heads):
        check_head(head, 'model.decode_head' +
                   (f'[{i}]' if isinstance(decode_head, list) else ''))
    last = final_head(decode_head)
    if decode_losses is not None:
        _replace_losses(last, _as_list(decode_losses))
    if calibration_loss is not None:
        _set_losses(last, _losses(last) + [calibration_loss])
    if isinstance(auxiliary_losses, str) and (auxiliary_losses
                                              not in AUXILIARY_MODES):
        raise ValueError(
            "model.auxiliary_losses must be 'keep', 'off' or a list of loss "
            f'configs, got {auxiliary_losses!r}')
    earlier_stages = heads[:-1]
    if auxiliary_losses == 'off':
        for head in earlier_stages:
            _replace_losses(head, [])
        return decode_head, None
    for aux in earlier_stages + _as_list(auxiliary_head):
        if not isinstance(auxiliary_losses, str):
            _replace_losses(aux, _as_list(auxiliary_losses))
        if calibration_loss is not None and calibrate_auxiliary:
            _set_losses(aux, _losses(aux) + [calibration_loss])
    return decode_head, auxiliary_head
