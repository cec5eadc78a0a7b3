"""GTA5: Cityscapes label ids -> train ids, split lists, class statistics.

    python tools/dataset_converters/gta5.py data/gta --nproc 8 --val-size 500

Reads ``data/gta/labels/*.png`` (Cityscapes label ids; images in
``data/gta/images``), writes ``labels/*_labelTrainIds.png`` (19 classes,
other ids -> 255), ``train.txt``/``val.txt`` (a seeded held-out labelled
split for source checkpoint selection; existing lists are kept unless
``--resplit``) and ``class_stats.json`` (pixels and images per class, for
rare-class analysis).
"""
from mmseg_calsfda.datasets.converters import GTA5_FORMAT, convert_cli
from mmseg_calsfda.datasets.label_maps import CITYSCAPES_CLASSES

if __name__ == '__main__':
    convert_cli(__doc__.split('\n')[0], 'images', 'labels', GTA5_FORMAT,
                CITYSCAPES_CLASSES)
