"""A short console for tools that run many Runners (``tools/demo.py``).

Each MMEngine Runner prints the full environment, the config and a log line
per interval; a tool that runs a dozen of them buries its results in
thousands of lines. :class:`QuietConsole` prints a header per stage and
sends everything else that is written to stdout/stderr -- Runner logs,
metric tables, warnings -- to one ``console.log`` in the work directory
(each Runner also keeps its own full log under ``<its work_dir>/<time>/``).
Progress bars (:class:`~mmseg_calsfda.engine.hooks.ProgressBarHook`, the
pseudo-label pass's) and the tool's own result tables go to the terminal.
"""
import contextlib
import os
import os.path as osp
import sys
from typing import Iterator, TextIO


def terminal() -> TextIO:
    """The process's real stdout, whatever ``sys.stdout`` is redirected
    to."""
    return sys.__stdout__ or sys.stdout


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

    @contextlib.contextmanager
    def stage(self, title: str) -> Iterator[None]:
        """Prints ``title`` on the terminal and redirects what runs inside.
        """
        print(f'\n== {title}', file=terminal(), flush=True)
        print(f'\n== {title}', file=self._log)
        with contextlib.redirect_stdout(self._log), \
                contextlib.redirect_stderr(self._log):
            yield

    def close(self) -> None:
        """Closes ``console.log``."""
        self._log.close()
