import os.path as osp

from mmengine.runner import Runner
from mmengine.runner.checkpoint import find_latest_checkpoint
from mmseg.registry import RUNNERS

from ...config_check import check_config
from ...config_refs import resolve_references


@RUNNERS.register_module()
class CalSFDARunner(Runner):
    """MMEngine's Runner, with ``resume`` fit for staged training.

    Every Cal-SFDA stage after the first names the previous stage's output in
    ``load_from``. MMEngine resumes *from ``load_from``* when both are set,
    so ``--resume`` would restart a stage from its starting weights (with the
    previous stage's optimizer) instead of continuing it. Here, when
    ``load_from`` lies outside ``work_dir``:

    * a checkpoint in ``work_dir`` -> resume from the latest one;
    * none yet -> a fresh start that loads ``load_from``'s weights.

    A ``load_from`` inside ``work_dir`` keeps MMEngine's meaning (resume from
    exactly that file). Configs select it with ``runner_type``, so MMSeg's own
    ``tools/train.py`` (and ``mim train``) use it too; it also resolves the
    config's ``'${key}'`` references (:mod:`mmseg_calsfda.config_refs`)
    before building.

    Args:
        *args, **kwargs: Those of MMEngine's :class:`Runner`, unchanged
            (this class adds none; ``load_from`` and ``resume`` mean what
            is said above).
    """

    @classmethod
    def from_cfg(cls, cfg) -> 'CalSFDARunner':
        """Resolves the config's ``'${key}'`` references
        (:func:`~mmseg_calsfda.config_refs.resolve_references`) and checks
        it (:func:`check_config`) before building, so that ``mim train``
        and MMSeg's ``tools/train.py`` refuse bad input as this
        repository's tools do. The Runner's ``cfg`` (and the config it
        dumps into ``work_dir``) is the resolved one."""
        cfg = resolve_references(cfg)
        check_config(cfg)
        return super().from_cfg(cfg)

    def load_or_resume(self) -> None:
        if self._resume and self._load_from is not None and \
                not self._inside_work_dir(self._load_from):
            latest = find_latest_checkpoint(self.work_dir)
            if latest is not None:
                self.logger.info(
                    f'resume: continuing this stage from {latest} (the '
                    f'config\'s load_from={self._load_from} is where the '
                    'stage started)')
                self._load_from = None
            else:
                self.logger.info(
                    f'resume: no checkpoint in {self.work_dir} yet; starting '
                    f'the stage from load_from={self._load_from}')
                self._resume = False
        super().load_or_resume()

    def _inside_work_dir(self, path: str) -> bool:
        work_dir = osp.realpath(self.work_dir)
        return osp.realpath(path).startswith(work_dir + osp.sep)
