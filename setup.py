"""Installs mmseg_calsfda, the Cal-SFDA plugin for MMSegmentation 1.x."""
import os.path as osp
import re

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


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


setup(
    name='mmseg_calsfda',
    version=get_version(),
    description='Cal-SFDA: source-free domain-adaptive semantic segmentation '
    'guided by expected calibration error, as an MMSegmentation plugin',
    long_description=open(osp.join(HERE, 'README.md')).read()
    if osp.exists(osp.join(HERE, 'README.md')) else '',
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('configs', 'tools', 'tests')),
    python_requires='>=3.8',
    install_requires=parse_requirements('requirements/runtime.txt'),
    extras_require=dict(
        mim=parse_requirements('requirements/mminstall.txt'),
        tests=parse_requirements('requirements/tests.txt'),
    ),
    license='Apache License 2.0',
    zip_safe=False,
)
