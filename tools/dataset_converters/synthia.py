"""SYNTHIA-RAND-CITYSCAPES: 16-bit label PNGs -> 16-class train ids.

    python tools/dataset_converters/synthia.py data/synthia --nproc 8

Reads ``data/synthia/GT/LABELS/*.png`` (16-bit, 3 channels, the class id in
the first (R) channel; images in ``data/synthia/RGB``), writes
``GT/LABELS/*_labelTrainIds.png`` (the 16 classes shared with Cityscapes,
other ids -> 255), ``train.txt``/``val.txt`` and ``class_stats.json``.
"""
from mmseg_calsfda.datasets.converters import SYNTHIA_FORMAT, convert_cli
from mmseg_calsfda.datasets.label_maps import SYNTHIA_CLASSES

if __name__ == '__main__':
    convert_cli(__doc__.split('\n')[0], 'RGB', 'GT/LABELS', SYNTHIA_FORMAT,
                SYNTHIA_CLASSES)
