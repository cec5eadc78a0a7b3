"""Stage 2 on tiny data: MMSeg's Runner trains only the value head."""
import os.path as osp

import torch
from mmseg.registry import RUNNERS

from tests.utils import tiny_cfg, tiny_source_cfg


def test_runner_stage_two_trains_only_the_head(synthetic_root, tmp_path):
    src = tiny_source_cfg(synthetic_root, tmp_path / 'src', max_iters=2)
    RUNNERS.build(src).train()
    stage1 = str(tmp_path / 'src' / 'best_cECE.pth')
    assert osp.isfile(stage1)

    cfg = tiny_cfg('deeplabv2_r101_gta5_value.py', synthetic_root,
                   tmp_path / 'value', max_iters=4, interval=2, lr=1e-3)
    cfg.load_from = stage1
    cfg.custom_hooks = [dict(
        type='BNWarmupHook', before='test', num_batches=2,
        dataloader=dict(
            batch_size=2, num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=False),
            dataset=dict(
                type='CheckedCityscapesDataset',
                data_root=osp.join(synthetic_root, 'cityscapes'),
                data_prefix=dict(img_path='leftImg8bit/train'),
                pipeline=[dict(type='LoadImageFromFile'),
                          dict(type='Resize', scale=(128, 64)),
                          dict(type='PackSegInputs')])))]
    runner = RUNNERS.build(cfg)
    runner.train()
    before = torch.load(stage1, map_location='cpu')['state_dict']
    after = runner.model.state_dict()
    for key, value in before.items():
        torch.testing.assert_close(after[key].cpu(), value,
                                   msg=key)  # frozen
    head = [k for k in after if k.startswith('value_head.')]
    assert head and any(k not in before for k in head)
    metrics = runner.val_loop.run()
    assert {'estECE', 'trueECE', 'ece_mse', 'ece_spearman'} <= set(metrics)
    # the hook warms the value head's BN up on target images before testing
    bn = runner.model.value_head.bn
    mean = bn.running_mean.clone()
    runner.test()
    assert not torch.equal(mean, bn.running_mean)
    assert osp.islink(tmp_path / 'value' / 'best_ece_mse.pth')
