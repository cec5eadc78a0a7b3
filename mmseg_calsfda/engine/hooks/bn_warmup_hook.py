from typing import Optional, Sequence, Union

from mmengine.hooks import Hook
from mmseg.registry import HOOKS
from torch.utils.data import DataLoader

from ...utils import named_dataloader
from ..bn_warmup import warmup_bn_stats

EVENTS = ('train', 'val', 'test')


@HOOKS.register_module()
class BNWarmupHook(Hook):
    """Re-estimates BatchNorm statistics on target data before an event.

    Runs :func:`~mmseg_calsfda.engine.bn_warmup.warmup_bn_stats` on the first
    ``num_batches`` batches of ``dataloader`` (use an unshuffled sampler for
    a deterministic result) before training starts and/or before each
    validation or test epoch.

    Args:
        dataloader (dict | DataLoader | str): Target images; the pipeline
            needs no annotations. A string names the config's top-level
            dataloader that holds them (``'estimation_dataloader'``).
        num_batches (int): Batches to use. Defaults to 50.
        modules (Sequence[str]): Whose BatchNorm layers to re-estimate.
            Defaults to ``('value_head',)``; add ``'backbone'`` to adapt the
            backbone's statistics as well.
        before (str | Sequence[str]): Any of ``'train'``, ``'val'``,
            ``'test'``. Defaults to ``'val'`` (label-free checkpoint
            selection, as the stage-3 recipe uses it).
    """
    priority = 'ABOVE_NORMAL'

    def __init__(self,
                 dataloader: Union[dict, DataLoader, str],
                 num_batches: int = 50,
                 modules: Sequence[str] = ('value_head', ),
                 before: Union[str, Sequence[str]] = 'val') -> None:
        before = (before, ) if isinstance(before, str) else tuple(before)
        unknown = set(before) - set(EVENTS)
        if unknown:
            raise ValueError(f'before must name events in {EVENTS}, got '
                             f'{sorted(unknown)}')
        if num_batches < 1:
            raise ValueError(f'num_batches must be >= 1, got {num_batches}')
        self._dataloader = dataloader
        self.num_batches = num_batches
        self.modules = tuple(modules)
        self.before = before
        self.last_summary: Optional[dict] = None

    def _loader(self, runner) -> DataLoader:
        self._resolve_name(runner)
        if isinstance(self._dataloader, dict):
            self._dataloader = runner.build_dataloader(
                self._dataloader, seed=runner.seed)
        return self._dataloader

    def warmup(self, runner) -> dict:
        """Runs the warm-up now and returns its summary."""
        self.last_summary = warmup_bn_stats(runner.model, self._loader(runner),
                                            self.num_batches, self.modules)
        return self.last_summary

    def _resolve_name(self, runner) -> None:
        if isinstance(self._dataloader, str):
            self._dataloader = named_dataloader(
                runner.cfg, self._dataloader, 'BNWarmupHook: dataloader')

    def before_train(self, runner) -> None:
        self._resolve_name(runner)  # a wrong name fails before training
        if 'train' in self.before:
            self.warmup(runner)

    def before_val_epoch(self, runner) -> None:
        if 'val' in self.before:
            self.warmup(runner)

    def before_test_epoch(self, runner) -> None:
        if 'test' in self.before:
            self.warmup(runner)
