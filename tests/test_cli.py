"""mmseg_calsfda.cli: one-line messages for config mistakes, and configs
kept outside the repository."""
import os.path as osp

import pytest

from mmseg_calsfda import cli
from tests.utils import ROOT

STAGE1 = osp.join(ROOT, 'configs', 'calsfda', 'deeplabv2_r101_gta5_source.py')


def exit_message(capsys, call, *args) -> str:
    """Runs ``call(*args)``, which must exit with status 2; returns what
    it printed on stderr."""
    with pytest.raises(SystemExit) as info:
        call(*args)
    assert info.value.code == cli.EXIT_USAGE
    return capsys.readouterr().err


def test_absolute_base_outside_the_repository(tmp_path):
    own = tmp_path / 'my_source.py'
    own.write_text(f'_base_ = {STAGE1!r}\n'
                   'train_dataloader = dict(batch_size=3)\n')
    cfg = cli.load_config(str(own), {'model.decode_head.dropout_ratio': 0.2})
    assert cfg.model.type == 'CalSFDASegmentor'
    assert cfg.model.decode_head.type == 'DLV2Head'
    assert cfg.model.decode_head.dropout_ratio == 0.2
    assert cfg.train_dataloader.batch_size == 3
    assert cfg.train_dataloader.dataset.type  # the recipe's data, inherited


def test_copied_stage_config_names_the_absolute_bases(tmp_path, capsys):
    copy = tmp_path / 'copy.py'
    copy.write_text(open(STAGE1).read())
    err = exit_message(capsys, cli.load_config, str(copy))
    assert err.count('\n') == 1 and err.startswith(f'error: {copy}: ')
    assert "'../_base_/models/deeplabv2_r101-d8.py'" in err
    fix = [osp.join(ROOT, 'configs', '_base_', 'models',
                    'deeplabv2_r101-d8.py'),
           osp.join(ROOT, 'configs', '_base_', 'calsfda', 'source_gta5.py')]
    assert f'_base_ = {fix!r}' in err
    # the fix the message gives works
    text = copy.read_text()
    start = text.index('_base_ = [')
    end = text.index(']', start) + 1
    copy.write_text(text[:start] + f'_base_ = {fix!r}' + text[end:])
    assert cli.load_config(str(copy)).model.decode_head.type == 'DLV2Head'


def test_missing_bases_follows_the_chain(tmp_path):
    (tmp_path / 'sub').mkdir()
    (tmp_path / 'a.py').write_text("_base_ = 'sub/b.py'\n")
    (tmp_path / 'sub' / 'b.py').write_text(
        "_base_ = ['c.py', 'mmseg::_base_/models/fcn_r50-d8.py']\nx = 1\n")
    found = cli.missing_bases(str(tmp_path / 'a.py'))
    assert found == (str(tmp_path / 'sub' / 'b.py'),
                     ['c.py'], ['c.py'])
    (tmp_path / 'sub' / 'c.py').write_text('y = 2\n')
    assert cli.missing_bases(str(tmp_path / 'a.py')) is None


def test_a_base_the_repository_lacks_says_how_paths_are_read(
        tmp_path, capsys):
    own = tmp_path / 'own.py'
    own.write_text("_base_ = './nowhere/thing.py'\n")
    err = exit_message(capsys, cli.load_config, str(own))
    assert "_base_ file './nowhere/thing.py' not found" in err
    assert 'relative to the config that names it, or as an absolute' in err


@pytest.mark.parametrize('text, expected', [
    ('model = dict(type="X"\n', "not valid Python: '(' was never closed, "
     'line 1'),
    ('x = undefined_name\n', "name 'undefined_name' is not defined"),
    ("custom_imports = dict(imports=['no_such_plugin'], "
     'allow_failed_imports=False)\n',
     "No module named 'no_such_plugin' (an import of custom_imports"),
])
def test_config_mistakes_are_one_line(tmp_path, capsys, text, expected):
    own = tmp_path / 'own.py'
    own.write_text(text)
    err = exit_message(capsys, cli.load_config, str(own))
    assert err.count('\n') == 1, err
    assert err.startswith(f'error: {own}: ') and expected in err


def test_missing_config_file(capsys):
    err = exit_message(capsys, cli.load_config, 'configs/nope.py')
    assert err == "error: config file 'configs/nope.py' does not exist\n"


def test_debug_env_reraises(tmp_path, monkeypatch):
    own = tmp_path / 'own.py'
    own.write_text('x = undefined_name\n')
    monkeypatch.setenv(cli.DEBUG_ENV, '1')
    with pytest.raises(NameError):
        cli.load_config(str(own))


def test_config_errors_lets_other_errors_through():
    with pytest.raises(RuntimeError):
        with cli.config_errors('x.py', cli.BUILD_ERRORS):
            raise RuntimeError('a bug, not a config mistake')


def test_registry_key_error_loses_its_quotes(capsys):
    def build():
        with cli.config_errors('x.py', cli.BUILD_ERRORS):
            raise KeyError("model.type = 'Nope' is not registered")
    err = exit_message(capsys, build)
    assert err == "error: x.py: model.type = 'Nope' is not registered\n"


def test_package_scope_base_names_the_absolute_path(tmp_path, capsys):
    own = tmp_path / 'own.py'
    own.write_text(
        "_base_ = 'mmseg_calsfda::calsfda/deeplabv2_r101_gta5_source.py'\n")
    err = exit_message(capsys, cli.load_config, str(own))
    assert err.count('\n') == 1
    assert 'reads pkg:: configs only from the OpenMMLab packages' in err
    assert f'by absolute path: {STAGE1!r}' in err
