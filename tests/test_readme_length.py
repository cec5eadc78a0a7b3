"""The README stays a short front page (OpenMMLab's projects/ shape): what
it is, install, quick start, usage, results, citation, licence; the rest
lives in docs/."""
import os.path as osp
import re

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def test_readme_is_short_and_has_the_sections():
    with open(osp.join(ROOT, 'README.md'), encoding='utf-8') as f:
        text = f.read()
    assert len(text.splitlines()) <= 150
    headings = re.findall(r'^## (.+)$', text, flags=re.M)
    for section in ('Install', 'Quick start', 'Usage', 'Results',
                    'Citation', 'Licence'):
        assert section in headings, f'README has no "## {section}"'
