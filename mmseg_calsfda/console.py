"""A short console for tools that run many Runners (``tools/demo.py``).

Each MMEngine Runner prints the full environment, the config and a log line
per interval; a tool that runs a dozen of them buries its results in
thousands of lines. :class:`QuietConsole` prints a header per stage and
sends everything else that is written to stdout/stderr -- Runner logs,
metric tables, warnings -- to one ``console.log`` in the work directory
(each Runner also keeps its own full log under ``<its work_dir>/<time>/``).
Progress bars (:class:`TerminalBar`: the training, validation and test
loops' through :class:`~mmseg_calsfda.engine.hooks.ProgressBarHook`, the
pseudo-label pass's) and the tool's own result tables go to the terminal;
each stage ends with a line giving its time.
"""
import contextlib
import os
import os.path as osp
import sys
import time
from typing import ClassVar, Iterator, Optional, TextIO


def terminal() -> TextIO:
    """The process's real stdout, whatever ``sys.stdout`` is redirected
    to."""
    return sys.__stdout__ or sys.stdout


def format_duration(seconds: float) -> str:
    """``'42s'``, ``'3m05s'`` or ``'1h02m'``."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f'{seconds}s'
    if seconds < 3600:
        return f'{seconds // 60}m{seconds % 60:02d}s'
    return f'{seconds // 3600}h{seconds % 3600 // 60:02d}m'


class TerminalBar:
    """A labelled progress bar on the terminal, one at a time.

    A bar that starts while another one is drawn (the pseudo-label pass
    inside a training run) ends that one's line first; the interrupted bar
    continues on a new line at its next update. On a terminal the bar is
    redrawn in place (at most every ``interval`` seconds); written to a
    file or pipe, it prints one line when it closes.

    Args:
        total (int): Steps to go.
        label (str): What the bar counts (``'train'``,
            ``'evaluate target_val'``).
        stream (TextIO, optional): Defaults to :func:`terminal`.
        interval (float): Seconds between redraws on a terminal.
    """
    width = 30
    #: The bar drawn on the current terminal line, if any.
    _drawn: ClassVar[Optional['TerminalBar']] = None

    def __init__(self, total: int, label: str,
                 stream: Optional[TextIO] = None,
                 interval: float = 0.1) -> None:
        self.total = max(int(total), 0)
        self.label = label
        self.stream = stream or terminal()
        self.interval = interval
        self.done = 0
        self.start = time.monotonic()
        self._shown = -float('inf')
        self._length = 0  # of the text drawn last
        self._closed = False
        self.live = bool(getattr(self.stream, 'isatty', lambda: False)())
        if self.live:
            self._draw()

    def render(self) -> str:
        """``label [=====     ] done/total, elapsed, ETA``."""
        elapsed = time.monotonic() - self.start
        fraction = self.done / self.total if self.total else 1.0
        filled = int(self.width * min(fraction, 1.0))
        text = (f'{self.label} [{"=" * filled}{" " * (self.width - filled)}]'
                f' {self.done}/{self.total}, {format_duration(elapsed)}')
        if 0 < self.done < self.total:
            eta = elapsed * (self.total - self.done) / self.done
            text += f', ETA {format_duration(eta)}'
        return text

    def update(self, steps: int = 1) -> None:
        """Counts ``steps`` more done."""
        self.done += steps
        now = time.monotonic()
        if self.live and (now - self._shown >= self.interval
                          or self.done >= self.total):
            self._draw()

    def _draw(self) -> None:
        drawn = TerminalBar._drawn
        if drawn is not None and drawn is not self:
            self.stream.write('\n')  # leave the other bar's line as it is
            self._length = 0
        text = self.render()
        # spaces cover the end of a longer text drawn before (an ETA)
        self.stream.write('\r' + text.ljust(self._length))
        self._length = len(text)
        self.stream.flush()
        TerminalBar._drawn = self
        self._shown = time.monotonic()

    def close(self) -> None:
        """Ends the bar's line (on a file or pipe: writes its one line)."""
        if self._closed:
            return
        self._closed = True
        if self.live:
            self._draw()
            self.stream.write('\n')
        else:
            self.stream.write(self.render() + '\n')
        self.stream.flush()
        TerminalBar._drawn = None


class QuietConsole:
    """Redirects a tool's Runners' console output to ``console.log``.

    Args:
        work_dir (str): Where ``console.log`` is written (appended to).
    """

    def __init__(self, work_dir: str) -> None:
        os.makedirs(work_dir, exist_ok=True)
        self.path = osp.join(work_dir, 'console.log')
        # open for the whole run: loggers created inside a stage keep
        # writing to it after the stage
        self._log = open(self.path, 'a', buffering=1)
        self.start = time.monotonic()

    @contextlib.contextmanager
    def stage(self, title: str) -> Iterator[None]:
        """Prints ``title`` on the terminal, redirects what runs inside,
        and prints the stage's time when it ends."""
        print(f'\n== {title}', file=terminal(), flush=True)
        print(f'\n== {title}', file=self._log)
        start = time.monotonic()
        with contextlib.redirect_stdout(self._log), \
                contextlib.redirect_stderr(self._log):
            yield
        took = f'   done in {format_duration(time.monotonic() - start)}'
        print(took, file=terminal(), flush=True)
        print(took, file=self._log)

    def elapsed(self) -> str:
        """The time since the console was opened (``'11m15s'``)."""
        return format_duration(time.monotonic() - self.start)

    def close(self) -> None:
        """Closes ``console.log``."""
        self._log.close()
