"""Installs the Cal-SFDA lab (``calsfda_lab``) next to the plugin;
``bash tools/setup_env.sh`` does it (``pip install --no-deps -e
projects/calsfda_lab``)."""
from setuptools import find_packages, setup

setup(
    name='calsfda_lab',
    version='0.1.0',
    description='The Cal-SFDA research harness: comparison, baselines, '
    'experiments and benchmark presets (not part of the plugin)',
    packages=find_packages(include=('calsfda_lab', 'calsfda_lab.*')),
    python_requires='>=3.8',
    install_requires=['mmseg_calsfda'],
    license='Apache License 2.0',
)
