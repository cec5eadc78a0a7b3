"""Installs mmseg_calsfda, the Cal-SFDA plugin for MMSegmentation 1.x."""
import os.path as osp
import re
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = osp.dirname(osp.abspath(__file__))
# Where a built package carries the shipped configs (OpenMMLab's place for
# them: mmseg ships mmseg/.mim/configs); mmseg_calsfda.utils reads it
MIM_CONFIGS = osp.join('mmseg_calsfda', '.mim', 'configs')


def get_version() -> str:
    with open(osp.join(HERE, 'mmseg_calsfda', 'version.py')) as f:
        return re.search(r"__version__ = '([^']+)'", f.read()).group(1)


def parse_requirements(fname: str) -> list:
    """Reads a requirements file, following ``-r`` includes."""
    reqs = []
    with open(osp.join(HERE, fname)) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if not line:
                continue
            if line.startswith('-r '):
                reqs += parse_requirements(
                    osp.join(osp.dirname(fname), line[3:].strip()))
            else:
                reqs.append(line)
    return reqs


class BuildPyWithConfigs(build_py):
    """Copies ``configs/`` into the built package as
    ``mmseg_calsfda/.mim/configs``, so a wheel (and ``pip install .``)
    carries the shipped configs. An editable install reads the checkout's
    ``configs/`` and gets no copy."""

    def run(self):
        super().run()
        if getattr(self, 'editable_mode', False):
            return
        target = osp.join(self.build_lib, MIM_CONFIGS)
        if osp.isdir(target):
            shutil.rmtree(target)
        shutil.copytree(osp.join(HERE, 'configs'), target,
                        ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))


setup(
    name='mmseg_calsfda',
    version=get_version(),
    description='Cal-SFDA: source-free domain-adaptive semantic segmentation '
    'guided by expected calibration error, as an MMSegmentation plugin',
    long_description=open(osp.join(HERE, 'README.md')).read()
    if osp.exists(osp.join(HERE, 'README.md')) else '',
    long_description_content_type='text/markdown',
    # only the library: the tests, tools and the lab stay in the checkout
    packages=find_packages(include=('mmseg_calsfda', 'mmseg_calsfda.*')),
    cmdclass=dict(build_py=BuildPyWithConfigs),
    python_requires='>=3.8',
    install_requires=parse_requirements('requirements/runtime.txt'),
    extras_require=dict(
        mim=parse_requirements('requirements/mminstall.txt'),
        tests=parse_requirements('requirements/tests.txt'),
    ),
    license='Apache License 2.0',
    zip_safe=False,
)
