"""The README's results table is the first table of the committed summary
it links to, row for row, and every table row of docs/results.md is a row
of the summary it links to (a number in the docs is a measured one)."""
import os.path as osp
import re

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
HEADING = '## Results'
SUMMARY_LINK = (r'\]\(((?:\.\./)?projects/calsfda_lab/records/comparison/'
                r'[^)]+/summary\.md)\)')


def headline_section() -> str:
    with open(osp.join(ROOT, 'README.md')) as f:
        text = f.read()
    start = text.index(HEADING)
    end = text.find('\n## ', start + len(HEADING))
    return text[start:end if end >= 0 else None]


def table_rows(markdown: str) -> list:
    """The lines of the first Markdown table in ``markdown``."""
    rows = []
    for line in markdown.splitlines():
        if line.startswith('|'):
            rows.append(line)
        elif rows:
            break
    return rows


def test_headline_table_is_the_linked_summary():
    section = headline_section()
    links = re.findall(SUMMARY_LINK, section)
    assert links, (f'{HEADING} links no '
                   'projects/calsfda_lab/records/comparison/*/summary.md')
    with open(osp.join(ROOT, links[0])) as f:
        summary = table_rows(f.read())
    readme = table_rows(section)
    missing = [row.split('|')[1].strip() for row in summary
               if row not in readme]
    assert not missing, (f'README {HEADING!r} lacks or changed these rows '
                         f'of {links[0]}: {missing}')
    assert len(readme) == len(summary), (
        f'README {HEADING!r} has {len(readme)} table lines, {links[0]} '
        f'{len(summary)}')


def test_results_page_tables_are_rows_of_its_summary():
    with open(osp.join(ROOT, 'docs', 'results.md')) as f:
        page = f.read()
    links = re.findall(SUMMARY_LINK, page)
    assert links, 'docs/results.md links no records/comparison/*/summary.md'
    with open(osp.normpath(osp.join(ROOT, 'docs', links[0]))) as f:
        summary = f.read().splitlines()
    rows = [line for line in page.splitlines() if line.startswith('|')]
    assert rows
    missing = [row for row in rows if row not in summary]
    assert not missing, (f'docs/results.md has table rows that are not in '
                         f'{links[0]}: {missing}')
