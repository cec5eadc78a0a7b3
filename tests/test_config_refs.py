"""'${key}' references between config keys, and the check that a hook's
copy of a top-level dataloader still reads what the key reads."""
import pytest
from mmengine.config import Config

from mmseg_calsfda.config_check import check_config
from mmseg_calsfda.config_refs import reference_key, resolve_references
from tests.utils import ROOT, stage_config


def test_references_are_replaced_by_the_values_they_name():
    cfg = Config(dict(
        root='data/x', size=dict(size=3, seed=1),
        loader=dict(dataset=dict(data_root='${root}', subset='${size}')),
        hooks=[dict(type='H', dataloader='${loader}')],
        pair=('${root}', 'plain'),
        nested='${loader.dataset.data_root}',
        note='see ${root}'))  # not a whole-value reference: kept
    resolved = resolve_references(cfg)
    assert resolved.hooks[0].dataloader == dict(
        dataset=dict(data_root='data/x', subset=dict(size=3, seed=1)))
    assert resolved.pair == ('data/x', 'plain')
    assert resolved.nested == 'data/x' and resolved.note == 'see ${root}'
    assert cfg.hooks[0].dataloader == '${loader}'  # the input is kept
    # each reference is its own copy
    resolved.hooks[0].dataloader.dataset.data_root = 'elsewhere'
    assert resolved.loader.dataset.data_root == 'data/x'


def test_reference_key():
    assert reference_key('${a.b}') == 'a.b'
    for value in ('a', '${}', '$a', '${a} ', 3, None):
        assert reference_key(value) is None


def test_a_missing_key_is_named_where_it_is_referenced():
    cfg = Config(dict(loader=dict(dataset=dict(data_root='${data_rot}'))))
    with pytest.raises(KeyError, match=r"loader\.dataset\.data_root = "
                       r"'\$\{data_rot\}', but the config has no key "
                       "'data_rot'"):
        resolve_references(cfg)


def test_a_cycle_is_named():
    cfg = Config(dict(a='${b}', b=dict(x='${a}')))
    with pytest.raises(ValueError, match='cycle: b -> a -> b'):
        resolve_references(cfg)


# ------------------------------------ copies of top-level dataloader keys
def test_shipped_target_configs_pass_the_copy_check():
    for name in ('deeplabv2_gta2cs.py', 'deeplabv2_gta2folder.py'):
        cfg = stage_config(name)
        cfg.load_from = None
        check_config(cfg)


@pytest.mark.parametrize('key, copy', [
    ('pseudo_label_dataloader', r'custom_hooks\[0\]\.dataloader'),
    ('estimation_dataloader', r'val_dataloader'),
    ('report_dataloader',
     r'default_hooks\.checkpoint\.report_dataloader'),
])
def test_a_child_that_overrides_only_the_top_level_key_is_refused(
        tmp_path, key, copy):
    """The Cityscapes recipe hands its hooks copies of the top-level keys:
    a child config overriding only the key would leave the hooks reading
    data/cityscapes/; refused, naming both."""
    child = tmp_path / 'child.py'
    child.write_text(
        f"_base_ = ['{ROOT}/configs/calsfda/deeplabv2_gta2cs.py']\n"
        'load_from = None\n'
        f"{key} = dict(dataset=dict(data_root='data/dashcam/'))\n")
    cfg = Config.fromfile(str(child))
    with pytest.raises(ValueError, match=(
            rf"^{copy} reads images from 'data/cityscapes/leftImg8bit/"
            rf"(train|val)', but {key} from 'data/dashcam/leftImg8bit/"
            rf".*'\$\{{{key}\}}'")):
        check_config(cfg)
