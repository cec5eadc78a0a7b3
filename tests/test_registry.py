"""Importing the plugin registers its components in MMSeg's registries, and
the Components table of the docs lists exactly those."""
import os.path as osp
import re
from typing import Dict, Set, Tuple

import mmengine.registry
import mmseg.registry
from mmengine.registry import Registry

import mmseg_calsfda
from tests.utils import ROOT

# The markdown table under COMPONENTS_HEADING in this file documents every
# registered component: `Name`s (several per row allowed; a parenthesis
# holds helpers that are not registered) | registry | what.
COMPONENTS_DOC = osp.join(ROOT, 'docs', 'components.md')
COMPONENTS_HEADING = '# Components'
PACKAGE = 'mmseg_calsfda'


def test_version():
    assert isinstance(mmseg_calsfda.__version__, str)
    assert mmseg_calsfda.__version__.count('.') == 2


def registries(module) -> Dict[str, Registry]:
    """The registries a module defines, by variable name (``MODELS``)."""
    return {name: value for name, value in vars(module).items()
            if isinstance(value, Registry)}


def registered_by_package(module) -> Set[Tuple[str, str]]:
    """``(component, registry name)`` of everything this package
    registered in ``module``'s registries."""
    return {(name, registry_name)
            for registry_name, registry in registries(module).items()
            for name, obj in registry.module_dict.items()
            if getattr(obj, '__module__', '').split('.')[0] == PACKAGE}


def documented() -> Set[Tuple[str, str]]:
    """``(component, registry name)`` of each row of the Components table
    in :data:`COMPONENTS_DOC`."""
    with open(COMPONENTS_DOC, encoding='utf-8') as f:
        lines = f.read().splitlines()
    assert COMPONENTS_HEADING in lines, (
        f'{COMPONENTS_DOC} has no {COMPONENTS_HEADING!r} section')
    start = lines.index(COMPONENTS_HEADING) + 1
    while start < len(lines) and not lines[start].startswith('|'):
        start += 1
    rows = []
    for line in lines[start + 2:]:  # after the header and the --- line
        if not line.startswith('|'):
            break
        rows.append([cell.strip() for cell in line.strip('|').split('|')])
    found = set()
    for names, registry, *_ in rows:
        for name in re.findall(r'`(\w+)`', re.sub(r'\(.*?\)', '', names)):
            found.add((name, registry))
    return found


def test_components_are_registered_in_mmseg_scope():
    registered = registered_by_package(mmseg.registry)
    assert ('CalSFDASegmentor', 'MODELS') in registered
    for _, registry_name in registered:
        assert getattr(mmseg.registry, registry_name).scope == 'mmseg'
    # nothing goes to MMEngine's root registries (default scope mmengine)
    assert not registered_by_package(mmengine.registry)


def test_components_table_lists_every_registered_component():
    """A component added, renamed or dropped without the docs fails."""
    registered, listed = registered_by_package(mmseg.registry), documented()
    assert not registered - listed, (
        f'registered but not in the Components table of {COMPONENTS_DOC}: '
        f'{sorted(registered - listed)}')
    assert not listed - registered, (
        f'in the Components table of {COMPONENTS_DOC} but not registered '
        f'(by {PACKAGE}, in that registry): {sorted(listed - registered)}')
