from typing import Dict, Optional

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from ...console import TerminalBar


@HOOKS.register_module()
class ProgressBarHook(Hook):
    """Labelled progress bars over a run's training iterations and its
    validation and test loops, on the terminal.

    For tools that send the Runner's own console output to a log file
    (:class:`~mmseg_calsfda.console.QuietConsole`): the bars
    (:class:`~mmseg_calsfda.console.TerminalBar`) are written to the
    process's real stdout, by the main process only. A resumed run's bar
    counts the iterations still to go. Written to a file or pipe (no
    terminal to redraw a line in), each bar prints one line when it ends.

    Args:
        labels (dict, optional): Bar labels by loop, overriding
            ``dict(train='train', val='validate', test='test')`` (e.g.
            ``dict(test='evaluate target_val')``).
    """
    priority = 'VERY_LOW'

    def __init__(self, labels: Optional[Dict[str, str]] = None) -> None:
        self.labels = dict(train='train', val='validate', test='test')
        self.labels.update(labels or {})
        self.bars: Dict[str, TerminalBar] = {}

    def _open(self, loop: str, total: int) -> None:
        if is_main_process():
            self.bars[loop] = TerminalBar(total, self.labels[loop])

    def _update(self, loop: str) -> None:
        if loop in self.bars:
            self.bars[loop].update()

    def _close(self, loop: str) -> None:
        bar = self.bars.pop(loop, None)
        if bar is not None:
            bar.close()

    def before_train(self, runner) -> None:
        self._open('train', runner.max_iters - runner.iter)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        self._update('train')

    def after_train(self, runner) -> None:
        self._close('train')

    def before_val_epoch(self, runner) -> None:
        self._open('val', len(runner.val_loop.dataloader))

    def after_val_iter(self, runner, batch_idx: int, data_batch=None,
                       outputs=None) -> None:
        self._update('val')

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._close('val')

    def before_test_epoch(self, runner) -> None:
        self._open('test', len(runner.test_loop.dataloader))

    def after_test_iter(self, runner, batch_idx: int, data_batch=None,
                        outputs=None) -> None:
        self._update('test')

    def after_test_epoch(self, runner, metrics=None) -> None:
        self._close('test')
