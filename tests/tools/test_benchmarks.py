"""The benchmark sections run against the shipped configs (no timings are
checked: they belong in benchmarks/results, not in unit tests)."""
import argparse
import importlib
import math
import os.path as osp
import sys

import pytest

from tests.utils import ROOT


@pytest.fixture(scope='module')
def run_all():
    sys.path.insert(0, osp.join(ROOT, 'tools', 'benchmark'))
    try:
        yield importlib.import_module('run_all')
    finally:
        sys.path.remove(osp.join(ROOT, 'tools', 'benchmark'))


def finite_positive(result, *keys):
    for key in keys:
        assert math.isfinite(result[key]) and result[key] > 0, key


def test_value_head_section_on_the_target_config(run_all):
    # ResNet-18 (512 channels) exercises report.stage_config's resizing
    result = run_all.value_head_overhead(
        'cpu', dict(depth=18, batch=1, size=64, reps=1))
    finite_positive(result, 'forward_s', 'forward_with_value_head_s',
                    'bn_warmup_batch_s', 'value_head_overhead',
                    'bn_warmup_batch_vs_forward')


def test_pseudo_label_section_writes_labels_and_a_profile(run_all, tmp_path):
    profile = tmp_path / 'out' / 'profile.txt'
    result = run_all.pseudo_label_pass.measure(argparse.Namespace(
        device='cpu', depth=18, height=64, width=128, num_images=2,
        warmup_batches=1, reps=1), str(profile))
    finite_positive(result, 'inference_s', 'pseudo_label_pass_s',
                    'bn_warmup_s', 'pseudo_label_pass_vs_inference',
                    'round_start_vs_inference', 'label_png_kib',
                    'pinned_inference_vs_inference',
                    'pseudo_label_pass_pinned_vs_inference')
    assert result['image_size'] == [64, 128]
    text = profile.read_text()
    assert 'Self CPU time total' in text and 'aten::' in text


def test_loss_section_compares_with_cross_entropy(run_all):
    result = run_all.loss('cpu', dict(batch=1, size=16, reps=1))
    finite_positive(result, 'loss_vs_loop', 'loss_vs_torchmetrics',
                    'loss_vs_ce', 'loss_vs_ce_bf16', 'ce_fwd_bwd_s',
                    'ce_bf16_fwd_bwd_s', 'diffece_bf16_fwd_bwd_s')
    assert 'loss_vs_ce bf16' in run_all.table(dict(loss=result))


@pytest.mark.slow
@pytest.mark.parametrize('network', ['deeplabv2', 'segformer'])
def test_step_section_on_each_network(run_all, network):
    result = run_all.step('cpu', dict(batch=2, size=64, depth=18, reps=1),
                          amp=False, network=network)
    finite_positive(result, 'ce_step_s', 'ce_diffece_step_s',
                    'diffece_step_overhead')
    assert result['network'] == network
