"""Kills the training process it is imported into, for the resume tests
(``custom_imports`` of a config; ``KILL_AT`` chooses where):

* ``pass:<round>``: during round ``<round>``'s pseudo-label pass, at its
  second label PNG;
* ``iter:<n>``: after training iteration ``<n>`` (mid-epoch).

SIGKILL: nothing is flushed or cleaned up, as when a job is preempted.
"""
import os
import signal

from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from mmseg_calsfda.pseudo_label import pseudo_label_pass


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


@HOOKS.register_module()
class KillSwitchHook(Hook):
    """SIGKILLs after the training iteration ``KILL_AT=iter:<n>``."""

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        where, _, at = os.environ.get('KILL_AT', '').partition(':')
        if where == 'iter' and runner.iter == int(at):
            _die()


def _install_pass_kill() -> None:
    where, _, at = os.environ.get('KILL_AT', '').partition(':')
    if where != 'pass':
        return
    write, written = pseudo_label_pass.write_png_atomic, []

    def dying_write(label, path):
        if f'round_{at}.tmp' in path:
            written.append(path)
            if len(written) == 2:
                _die()
        write(label, path)

    pseudo_label_pass.write_png_atomic = dying_write


_install_pass_kill()
