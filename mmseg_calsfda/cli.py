"""What the command-line tools print for a user's config mistakes.

A misspelt ``type``, a ``_base_`` file that is not where a config says, a
config that does not parse: these are the user's to fix, and a traceback
through MMEngine hides the one sentence that matters. Inside
:func:`config_errors` (around loading, checking and building from a config)
such an error becomes one line on stderr::

    error: my_config.py: model.decode_head.type = 'DLV2Haed' is not
    registered in the mmseg::model registry (misspelt, ...)

and exit status 2 (:data:`EXIT_USAGE`, as argparse uses). Set
``CALSFDA_DEBUG=1`` to get the original exception with its traceback.

A config outside the repository cannot inherit the shipped ones with the
relative ``_base_`` paths they use among themselves; it names them by
absolute path (README, "Your own configs"). :func:`missing_bases` finds such
a path and the message gives the absolute one to use.
"""
import ast
import contextlib
import os
import os.path as osp
import sys
import warnings
from typing import Iterator, List, NoReturn, Optional, Sequence, Tuple

from .utils import shipped_configs_dir

#: Environment variable that re-raises config errors with their traceback.
DEBUG_ENV = 'CALSFDA_DEBUG'
#: Exit status of a usage or config mistake (argparse's).
EXIT_USAGE = 2

# Errors that building from a config raises for a mistake in it: a key
# that no registry or class knows, a value out of range, a missing file.
BUILD_ERRORS = (KeyError, ValueError, TypeError, FileNotFoundError,
                ImportError)


# Warnings of the pinned MMEngine/MMSeg that say nothing a user can act on
# (pytest.ini hides the same ones): mmengine 0.10.7 imports pkg_resources;
# mmseg 1.2.2 builds its losses through its own deprecated build_loss and
# warns about a CrossEntropyLoss default whatever the config says.
KNOWN_WARNINGS = (
    '.*pkg_resources is deprecated',
    '.*``build_loss`` would be deprecated',
    '.*Default ``avg_non_ignore`` is False',
)


def quiet_known_warnings() -> None:
    """Hides :data:`KNOWN_WARNINGS` (call before loading a config)."""
    for message in KNOWN_WARNINGS:
        warnings.filterwarnings('ignore', message=message)


def fail(message: str) -> NoReturn:
    """Prints ``error: <message>`` to stderr and exits with
    :data:`EXIT_USAGE`."""
    print(f'error: {message}', file=sys.stderr, flush=True)
    raise SystemExit(EXIT_USAGE)


def base_entries(path: str) -> List[str]:
    """The ``_base_`` entries of a Python config file, as written (a
    config whose ``_base_`` is not a literal gives none).

    Args:
        path (str): A ``.py`` config file.

    Returns:
        list[str]: The file names ``_base_`` lists, in order.
    """
    if not path.endswith('.py'):
        return []
    with open(path, encoding='utf-8') as f:
        tree = ast.parse(f.read(), filename=path)
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == '_base_'
                for t in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                return []
            return [value] if isinstance(value, str) else list(value)
    return []


def missing_bases(path: str) -> Optional[Tuple[str, List[str], List[str]]]:
    """The first config in ``path``'s inheritance chain that names
    ``_base_`` files that do not exist.

    Paths are resolved as MMEngine does: relative to the file that names
    them; ``package::`` entries are left to MMEngine.

    Args:
        path (str): The config a tool was given.

    Returns:
        tuple | None: ``(config file, its _base_ entries, those that are
        missing)``, or None if every ``_base_`` file exists.
    """
    seen = set()
    todo = [osp.abspath(path)]
    while todo:
        current = todo.pop(0)
        if current in seen or not osp.isfile(current):
            continue
        seen.add(current)
        try:
            entries = [e for e in base_entries(current) if '::' not in e]
        except (SyntaxError, UnicodeDecodeError):
            continue
        resolved = [osp.join(osp.dirname(current), e) for e in entries]
        missing = [e for e, r in zip(entries, resolved) if not osp.isfile(r)]
        if missing:
            return current, entries, missing
        todo += resolved
    return None


def shipped_base(entry: str) -> Optional[str]:
    """The shipped config that a relative ``_base_`` entry meant if the
    config was copied out of a folder of ``configs/`` (e.g.
    ``'../_base_/models/deeplabv2_r101-d8.py'`` from ``configs/calsfda``).
    """
    configs = shipped_configs_dir()
    if configs is None or osp.isabs(entry):
        return None
    for folder, _, _ in os.walk(configs):
        candidate = osp.normpath(osp.join(folder, entry))
        if osp.isfile(candidate):
            return candidate
    return None


def describe_missing_base(config: str, entries: Sequence[str],
                          missing: Sequence[str]) -> str:
    """The message for ``_base_`` entries of ``config`` that do not exist,
    with the ``_base_`` to write instead where the repository has them.

    Args:
        config (str): The config file that names them.
        entries (Sequence[str]): All its ``_base_`` entries.
        missing (Sequence[str]): Those that do not exist.
    """
    names = ', '.join(repr(e) for e in missing)
    where = osp.dirname(config) or '.'
    message = (f'{config}: _base_ file {names} not found (relative paths '
               f'are read from {where}); ')
    fixes = [
        shipped_base(e) if e in missing else osp.normpath(
            osp.join(where, e)) for e in entries
    ]
    if not all(fixes):
        return message + ('give each _base_ file relative to the config '
                          'that names it, or as an absolute path')
    fix = repr(fixes[0]) if len(fixes) == 1 else repr(fixes)
    return message + ('a config outside the repository names the shipped '
                      f'ones by absolute path: _base_ = {fix} '
                      "(README, 'Your own configs')")


def describe_unknown_scope(config: str, error: BaseException) -> str:
    """The message for a ``_base_`` like ``'mmseg_calsfda::calsfda/x.py'``,
    which MMEngine refuses (it reads ``pkg::`` configs only from the
    OpenMMLab packages it knows)."""
    configs = shipped_configs_dir()
    scoped = [e for e in base_entries(config) if '::' in e] or ['pkg::']
    fix = 'name the file by absolute path'
    rest = scoped[0].partition('::')[2]
    if configs and rest and osp.isfile(osp.join(configs, rest)):
        fix += f': {osp.join(configs, rest)!r}'
    return (f'{config}: _base_ {scoped[0]!r} cannot be read ({error.args[0]}'
            ' MMEngine reads pkg:: configs only from the OpenMMLab packages '
            f"it knows); {fix} (README, 'Your own configs')")


def _missing_module(error: BaseException) -> Optional[BaseException]:
    """The ``ModuleNotFoundError`` behind an ``ImportError``, if any."""
    while error is not None:
        if isinstance(error, ModuleNotFoundError):
            return error
        error = error.__cause__ or error.__context__
    return None


def describe(error: BaseException, config: str) -> str:
    """One line for an exception raised while reading or building
    ``config``: what is wrong, where, and the fix when the error says it.

    Args:
        error (BaseException): The exception.
        config (str): The config file the tool was given.

    Returns:
        str: The message, without the ``error:`` prefix.
    """
    if isinstance(error, FileNotFoundError):
        found = missing_bases(config)
        if found is not None:
            return describe_missing_base(*found)
    if isinstance(error, AssertionError) and 'does not support to load' \
            in str(error):
        return describe_unknown_scope(config, error)
    if isinstance(error, SyntaxError):
        return (f'{config}: the config (or a file it inherits) is not valid '
                f'Python: {error.msg}, line {error.lineno}: '
                f'{(error.text or "").strip()}')
    missing_module = (_missing_module(error)
                      if isinstance(error, ImportError) else None)
    if missing_module is not None:
        return (f'{config}: {missing_module} (an import of custom_imports: '
                'misspelt, or its package not installed in this '
                f'environment, {sys.executable})')
    if isinstance(error, KeyError) and len(error.args) == 1 and isinstance(
            error.args[0], str):
        text = error.args[0]  # str(KeyError) adds quotes
    else:
        text = str(error) or type(error).__name__
    if isinstance(error, NameError):
        text = f'{text} (a config can only use names it defines or imports)'
    if not isinstance(error, (KeyError, ValueError, FileNotFoundError,
                              ModuleNotFoundError, NameError)):
        text = f'{type(error).__name__}: {text}'
    return f'{config}: {" ".join(text.split())}'


@contextlib.contextmanager
def config_errors(config: str,
                  errors: Tuple[type, ...] = (Exception, )) -> Iterator[None]:
    """Turns an exception of a type in ``errors`` raised inside into one
    line on stderr (:func:`describe`) and exit status 2.

    ``CALSFDA_DEBUG=1`` re-raises it instead (with its traceback).

    Args:
        config (str): The config file the tool was given (named in the
            message).
        errors (tuple[type]): What counts as a config mistake here. Loading
            a config: any exception; building from one:
            :data:`BUILD_ERRORS`.
    """
    try:
        yield
    except errors as e:
        if os.environ.get(DEBUG_ENV, '') not in ('', '0'):
            raise
        fail(describe(e, config))


def load_config(path: str, cfg_options: Optional[dict] = None):
    """``Config.fromfile(path)`` merged with ``cfg_options``; a missing file
    or a mistake in the config exits with one line (:func:`config_errors`).

    Args:
        path (str): The config file.
        cfg_options (dict, optional): ``--cfg-options`` to merge in.

    Returns:
        Config: The loaded config.
    """
    from mmengine.config import Config
    if not osp.isfile(path):
        fail(f'config file {path!r} does not exist')
    with config_errors(path):
        cfg = Config.fromfile(path)
        if cfg_options:
            cfg.merge_from_dict(cfg_options)
    return cfg
