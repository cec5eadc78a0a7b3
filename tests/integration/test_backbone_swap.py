"""The SegFormer (MiT) configs run the whole pipeline: stage 1 -> 2 -> 3."""
import json

import pytest
from mmseg.registry import RUNNERS

from tests.utils import tiny_cfg

pytestmark = pytest.mark.slow


def test_mit_through_all_three_stages(synthetic_root, tmp_path):
    src = tiny_cfg('segformer_mit-b2_gta5_source.py', synthetic_root,
                   tmp_path / 'src', max_iters=2, interval=2, lr=1e-3)
    RUNNERS.build(src).train()
    value = tiny_cfg('segformer_mit-b2_gta5_value.py', synthetic_root,
                     tmp_path / 'value', max_iters=2, interval=2, lr=1e-3)
    value.load_from = str(tmp_path / 'src' / 'best_cECE.pth')
    RUNNERS.build(value).train()
    target = tiny_cfg('segformer_mit-b2_gta2cs.py', synthetic_root,
                      tmp_path / 'target', max_epochs=1, lr=1e-3)
    target.load_from = str(tmp_path / 'value' / 'best_ece_mse.pth')
    target.custom_hooks[0].epochs_per_round = 1
    target.custom_hooks[0].bn_warmup_batches = 1
    target.custom_hooks[1].num_batches = 1
    runner = RUNNERS.build(target)
    runner.train()
    assert type(runner.model.backbone).__name__ == 'MixVisionTransformer'
    # the value head reads SegformerHead's class probabilities
    assert runner.model.value_head.in_channels == 19
    selection = json.loads((tmp_path / 'target' / 'selection.json')
                           .read_text())
    assert 'estECE' in selection['selected']
    assert (tmp_path / 'target' / 'pseudo_labels' / 'round_0' /
            'summary.json').exists()
