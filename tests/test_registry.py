"""Importing the plugin registers its components in MMSeg's registries."""
from mmseg.registry import DATASETS, HOOKS, METRICS, MODELS

import mmseg_calsfda


def test_version():
    assert isinstance(mmseg_calsfda.__version__, str)
    assert mmseg_calsfda.__version__.count('.') == 2


def test_components_are_registered_in_mmseg_scope():
    expected = {
        MODELS: ['DiffECELoss', 'DLV2Head', 'ECEValueNetHead',
                 'CalSFDASegmentor'],
        METRICS: ['ECEMetric', 'EstimatedECEMetric', 'ConfidenceMetric'],
        HOOKS: ['ECELossWarmupHook', 'ECECheckpointHook', 'BNWarmupHook',
                'ProgressBarHook', 'SelfTrainingHook'],
        DATASETS: ['GTA5Dataset', 'SynthiaDataset',
                   'CheckedCityscapesDataset'],
    }
    for registry, names in expected.items():
        assert registry.scope == 'mmseg'
        for name in names:
            assert name in registry.module_dict, (registry.name, name)
