"""mmseg_calsfda.console: labelled progress bars one at a time, and a time
line per stage."""
import io

import pytest

from mmseg_calsfda.console import QuietConsole, TerminalBar, format_duration


class FakeTerminal(io.StringIO):

    def isatty(self) -> bool:
        return True


def drawn_lines(text: str) -> list:
    """Per terminal line, the labels of what was drawn on it."""
    return [{seg.split(' [')[0] for seg in line.split('\r') if seg}
            for line in text.split('\n')]


def test_nested_bar_takes_its_own_line():
    """The pseudo-label pass inside training: the training bar's line is
    left as it is, the pass draws on a new line, and training goes on
    below it; no line holds two bars."""
    term = FakeTerminal()
    train = TerminalBar(4, 'train', term, interval=0)
    train.update()
    inner = TerminalBar(3, 'pseudo-labels (thresholds)', term, interval=0)
    for _ in range(3):
        inner.update()
    inner.close()
    for _ in range(3):
        train.update()
    train.close()
    lines = drawn_lines(term.getvalue())
    assert lines == [{'train'}, {'pseudo-labels (thresholds)'}, {'train'},
                     set()]
    visible = [line.split('\r')[-1] for line in term.getvalue().split('\n')]
    assert visible[0].startswith('train [') and ' 1/4' in visible[0]
    assert ' 3/3' in visible[1]
    assert ' 4/4' in visible[2]
    assert '0/' not in visible[2]  # no stray empty bar
    # the last, shorter text (no ETA) covers the longer one before it
    draws = term.getvalue().split('\n')[2].split('\r')[1:]
    assert 'ETA' in draws[0] and 'ETA' not in draws[-1]
    assert all(len(later) >= len(earlier.rstrip())
               for earlier, later in zip(draws, draws[1:]))


def test_bar_on_a_pipe_prints_one_line_when_it_ends():
    out = io.StringIO()
    bar = TerminalBar(5, 'evaluate target_val', out)
    for _ in range(5):
        bar.update()
    assert out.getvalue() == ''
    bar.close()
    bar.close()  # once
    text = out.getvalue()
    assert text.count('\n') == 1 and '\r' not in text
    assert text.startswith('evaluate target_val [') and ' 5/5, ' in text


@pytest.mark.parametrize('seconds, text', [(4.4, '4s'), (75, '1m15s'),
                                           (675, '11m15s'),
                                           (3720, '1h02m')])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_stage_prints_its_time(tmp_path, capsys, monkeypatch):
    term = io.StringIO()
    monkeypatch.setattr('mmseg_calsfda.console.terminal', lambda: term)
    console = QuietConsole(str(tmp_path))
    with console.stage('stage 1: something'):
        print('runner noise')
    console.close()
    assert term.getvalue().splitlines() == ['', '== stage 1: something',
                                            '   done in 0s']
    log = (tmp_path / 'console.log').read_text()
    assert 'runner noise' in log and 'done in 0s' in log
