from typing import Optional

from mmengine.hooks import Hook
from mmengine.utils import ProgressBar
from mmseg.registry import HOOKS

from ...console import terminal


@HOOKS.register_module()
class ProgressBarHook(Hook):
    """A progress bar over a run's training iterations, on the terminal.

    For tools that send the Runner's own console output to a log file
    (:class:`~mmseg_calsfda.console.QuietConsole`): the bar is written to
    the process's real stdout. A resumed run's bar counts the iterations
    still to go. Written to a file or pipe (no terminal to redraw a line
    in), it prints about 20 lines however long the run.
    """
    priority = 'VERY_LOW'

    def __init__(self) -> None:
        self.bar: Optional[ProgressBar] = None
        self.step = 1
        self._pending = 0

    def before_train(self, runner) -> None:
        total = runner.max_iters - runner.iter
        self.bar = ProgressBar(total, file=terminal())
        self.step = 1 if terminal().isatty() else max(1, total // 20)
        self._pending = 0

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        self._pending += 1
        if self._pending >= self.step or runner.iter + 1 >= runner.max_iters:
            self.bar.update(self._pending)
            self._pending = 0

    def after_train(self, runner) -> None:
        terminal().write('\n')
        terminal().flush()
