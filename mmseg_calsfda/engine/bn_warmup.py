"""Re-estimating BatchNorm statistics on (unlabelled) target data.

The value head's BatchNorm statistics come from the source domain; before it
estimates ECE on target images they are re-estimated there (docs/method.md,
"BatchNorm statistic warm-up"). :func:`warmup_bn_stats` runs forward passes
with the chosen BatchNorm layers in train mode (normalising by batch
statistics, as the reference does) and sets their running statistics to the
*exact* mean and (unbiased) variance of all the inputs they saw -- the limit
of the cumulative average with ``momentum=None``, without its bias when
batches differ in size.
Sums are all-reduced across ranks, so N processes give the statistics of the
union of their data.

A BatchNorm on globally pooled features (STDC's and BiSeNet's context
paths, PSPNet's 1x1 pyramid level) sees one value per channel in a batch of
one image, which train mode cannot normalise. :class:`OneValueGuard` lets
such a forward normalise with the layer's running statistics instead (as in
eval mode); the warm-up still accumulates the layer's inputs, so its new
statistics are exact all the same.
"""
from typing import Dict, Iterable, List, Sequence, Set, Tuple

import torch
import torch.nn as nn
from mmengine.dist import all_reduce, is_distributed
from mmengine.logging import print_log
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

from ..utils import unwrap_model


def select_bn_layers(model: nn.Module,
                     modules: Sequence[str]) -> List[Tuple[str, _BatchNorm]]:
    """BatchNorm layers of ``model`` under the given module names.

    Args:
        model (nn.Module): The (unwrapped) model.
        modules (Sequence[str]): Dotted module names, e.g. ``('value_head',)``
            or ``('backbone', 'value_head')``.

    Returns:
        list[tuple[str, _BatchNorm]]: ``(name, layer)`` pairs.
    """
    layers = [(name, m) for name, m in model.named_modules()
              if isinstance(m, _BatchNorm) and any(
                  name == p or name.startswith(p + '.') for p in modules)]
    if not layers:
        raise ValueError(f'no BatchNorm layer under modules={list(modules)}')
    return layers


class OneValueGuard:
    """While active, BatchNorm layers in train mode normalise a batch
    with a single value per channel by their running statistics instead of
    raising (``Expected more than 1 value per channel when training``).

    Args:
        layers (Iterable[_BatchNorm]): The layers to guard.
    """

    def __init__(self, layers: Iterable[_BatchNorm]) -> None:
        self._switched: Set[int] = set()
        self.handles = []
        for layer in layers:
            self.handles.append(layer.register_forward_pre_hook(self._before))
            self.handles.append(layer.register_forward_hook(self._after))

    def _before(self, layer: _BatchNorm, args: Tuple[Tensor]) -> None:
        x = args[0]
        if layer.training and x.numel() == x.shape[1]:
            layer.training = False
            self._switched.add(id(layer))

    def _after(self, layer: _BatchNorm, args, output) -> None:
        if id(layer) in self._switched:
            self._switched.discard(id(layer))
            layer.training = True

    def remove(self) -> None:
        """Removes the hooks."""
        for handle in self.handles:
            handle.remove()

    def __enter__(self) -> 'OneValueGuard':
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


class _MomentAccumulator:
    """Forward pre-hook summing per-channel x and x^2 of a BN layer's input."""

    def __init__(self, layer: _BatchNorm) -> None:
        zeros = torch.zeros(layer.num_features, dtype=torch.float64,
                            device=layer.running_mean.device)
        self.sum, self.sum_sq = zeros.clone(), zeros.clone()
        self.count = torch.zeros((), dtype=torch.float64,
                                 device=zeros.device)
        self.handle = layer.register_forward_pre_hook(self)

    def __call__(self, layer: _BatchNorm, args: Tuple[Tensor]) -> None:
        x = args[0].detach().double().transpose(0, 1).flatten(1)
        self.sum += x.sum(1)
        self.sum_sq += (x * x).sum(1)
        self.count += x.shape[1]

    def moments(self) -> Tuple[Tensor, Tensor]:
        """Mean and unbiased variance of everything seen (on all ranks)."""
        stats = torch.cat([self.sum, self.sum_sq, self.count[None]])
        if is_distributed():
            all_reduce(stats)
        n = len(self.sum)
        total, total_sq, count = stats[:n], stats[n:2 * n], stats[-1]
        mean = total / count
        var = (total_sq - count * mean * mean) / (count - 1).clamp(min=1)
        return mean, var.clamp(min=0)


def _warmup_forward(model: nn.Module, inputs: Tensor,
                    modules: Sequence[str]) -> None:
    """Runs the parts of the model whose BatchNorm layers are warmed up."""
    feats = model.extract_feat(inputs)
    metas = model._image_metas(inputs)
    logits = None
    if any(m.split('.')[0] == 'decode_head' for m in modules):
        logits = model.decode_logits(feats, metas)
    if any(m.split('.')[0] == 'auxiliary_head' for m in modules):
        heads = model.auxiliary_head
        for head in heads if isinstance(heads, nn.ModuleList) else [heads]:
            head.forward(feats)
    if getattr(model, 'value_head', None) is not None:
        model.value_head(model.value_inputs(feats, logits, metas))


@torch.no_grad()
def warmup_bn_stats(model: nn.Module,
                    data: Iterable[dict],
                    num_batches: int,
                    modules: Sequence[str] = ('value_head', )) -> Dict:
    """Re-estimates the running statistics of BatchNorm layers on ``data``.

    Args:
        model (nn.Module): A segmentor (optionally wrapped by DDP) with a
            ``data_preprocessor`` and ``extract_feat``.
        data (Iterable[dict]): Batches as a dataloader yields them.
        num_batches (int): Batches to use (fewer if ``data`` runs out).
        modules (Sequence[str]): Whose BatchNorm layers to re-estimate
            (submodules of the segmentor). Defaults to ``('value_head',)``:
            the ECE estimator adapts to the images while the segmentor it
            measures keeps the statistics it was trained with
            (:class:`BNWarmupHook` and ``tools/estimate_ece.py`` warm up
            only the value head). :class:`SelfTrainingHook` defaults to
            ``('backbone', 'value_head')`` instead: before a round's
            pseudo-labels it adapts the segmentor too (AdaBN).

    Returns:
        dict: ``layers`` (number), ``batches`` and ``images`` seen.
    """
    if num_batches < 1:
        raise ValueError(f'num_batches must be >= 1, got {num_batches}')
    model = unwrap_model(model)
    layers = select_bn_layers(model, modules)
    was_training = model.training
    modes = [layer.training for _, layer in layers]
    model.eval()
    accumulators = []
    for _, layer in layers:
        layer.train()
        accumulators.append(_MomentAccumulator(layer))
    batches = images = 0
    guard = OneValueGuard(layer for _, layer in layers)
    try:
        for batch in data:
            if batches >= num_batches:
                break
            inputs = model.data_preprocessor(batch, False)['inputs']
            _warmup_forward(model, inputs, modules)
            batches += 1
            images += inputs.shape[0]
    finally:
        guard.remove()
        for acc in accumulators:
            acc.handle.remove()
        model.train(was_training)
        for (_, layer), mode in zip(layers, modes):
            layer.train(mode)
    if batches == 0:
        raise ValueError('BN warm-up got no data: the dataloader is empty')
    for (_, layer), acc in zip(layers, accumulators):
        mean, var = acc.moments()
        layer.running_mean.copy_(mean)
        layer.running_var.copy_(var)
        layer.num_batches_tracked.fill_(batches)
    summary = dict(layers=len(layers), batches=batches, images=images)
    print_log(
        f'BN warm-up: re-estimated {len(layers)} BatchNorm layer(s) under '
        f'{list(modules)} on {images} image(s) in {batches} batch(es)',
        logger='current')
    return summary
