"""Every relative link in the repository's Markdown resolves: the file (or
folder) exists, and a ``#section`` names a heading of the linked page as
GitHub spells its anchor. Docs cite nothing a reader of the checkout does
not have."""
import os.path as osp
import re
import subprocess
import sys
from functools import lru_cache
from typing import List, Tuple

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
FENCE = re.compile(r'^```.*?^```', re.M | re.S)
LINK = re.compile(r'\]\(([^)\s]+)\)')
HEADING = re.compile(r'^#{1,6}\s+(.+?)\s*#*\s*$', re.M)


def markdown_files() -> List[str]:
    """The Markdown files git tracks (relative to the root), or every one
    outside hidden and work folders when the tree is no git checkout."""
    try:
        out = subprocess.run(['git', 'ls-files', '*.md'], cwd=ROOT,
                             capture_output=True, text=True, check=True)
        return out.stdout.split()
    except (OSError, subprocess.CalledProcessError):
        import glob
        return [f for f in glob.glob('**/*.md', root_dir=ROOT, recursive=True)
                if not f.startswith(('.', 'work_dirs'))]


def prose(text: str) -> str:
    """The text without its fenced code blocks."""
    return FENCE.sub('', text)


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation other than
    ``-`` and ``_`` (backticks and emphasis marks too) dropped, spaces to
    ``-``."""
    return re.sub(r'[^\w\- ]', '', heading.strip().lower()).replace(' ', '-')


@lru_cache(maxsize=None)
def anchors(path: str) -> frozenset:
    """The anchors of one page's headings (read once per page, however
    many links point into it)."""
    with open(path, encoding='utf-8') as f:
        return frozenset(anchor(h)
                         for h in HEADING.findall(prose(f.read())))


def broken_links(rel: str) -> List[Tuple[str, str]]:
    """``(link, why)`` for each relative link of one Markdown file that
    does not resolve."""
    path = osp.join(ROOT, rel)
    with open(path, encoding='utf-8') as f:
        text = prose(f.read())
    broken = []
    for link in LINK.findall(text):
        if re.match(r'[a-z]+:', link):  # http(s), mailto: not checked here
            continue
        target, _, section = link.partition('#')
        target = osp.normpath(osp.join(osp.dirname(path), target)) \
            if target else path
        if not osp.exists(target):
            broken.append((link, f'no such file: {osp.relpath(target, ROOT)}'))
        elif section and target.endswith('.md') and \
                section not in anchors(target):
            broken.append((link, f'no heading with anchor #{section} in '
                           f'{osp.relpath(target, ROOT)}'))
    return broken


def test_the_checker_sees_the_readme():
    files = markdown_files()
    assert 'README.md' in files and \
        'projects/calsfda_lab/docs/findings.md' in files


def test_anchor_spelling():
    assert anchor('The estimate or the criterion? After the report seeds') \
        == 'the-estimate-or-the-criterion-after-the-report-seeds'
    assert anchor('`EfficientNetLite`, step by step') == \
        'efficientnetlite-step-by-step'


def test_broken_links_are_found(tmp_path, monkeypatch):
    (tmp_path / 'a.md').write_text('# Top\n\nsee [b](b.md), [x](#top), '
                                   '[y](#nowhere), [z](gone.md)\n'
                                   '```\n[code](not/checked.md)\n```\n')
    (tmp_path / 'b.md').write_text('# B\n')
    monkeypatch.setattr(sys.modules[__name__], 'ROOT', str(tmp_path))
    found = dict(broken_links('a.md'))
    assert set(found) == {'#nowhere', 'gone.md'}, found


@pytest.mark.parametrize('rel', markdown_files())
def test_relative_links_resolve(rel):
    broken = broken_links(rel)
    assert not broken, f'{rel}: ' + '; '.join(
        f'[...]({link}): {why}' for link, why in broken)
