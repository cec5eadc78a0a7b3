"""``tools/make_synthetic_data.py`` with the lab's presets registered.

    python -m calsfda_lab.make_data data/hard --seed 0 --shift hard

Takes the tool's arguments; ``--shift`` also accepts ``swap``, ``hard``
and ``below`` (:mod:`calsfda_lab.presets`).
"""
import os.path as osp
import runpy

from . import presets  # noqa: F401  registers swap, hard, below

TOOL = osp.join(osp.dirname(osp.abspath(__file__)), '..', '..', '..',
                'tools', 'make_synthetic_data.py')

if __name__ == '__main__':
    runpy.run_path(osp.normpath(TOOL), run_name='__main__')
