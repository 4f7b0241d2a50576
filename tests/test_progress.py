"""`Progress`: a bar on stderr only for a terminal, lines on stdout otherwise."""
import io
import sys

from deeplab_dpc.progress import Progress


def test_lines_on_stdout_about_every_tenth_when_not_a_terminal(capsys):
    with Progress(20, "val") as bar:
        for _ in range(20):
            bar.update()
        bar.note("a note")
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert err == ""
    assert [l.split()[1] for l in lines if l.startswith("  val:")] == [
        f"{i}/20" for i in range(2, 21, 2)]
    assert "a note" in lines


def test_unknown_total_and_the_last_line(capsys):
    with Progress(None, "x", every=3) as bar:
        bar.update(7)
    assert capsys.readouterr().out.splitlines()[-1].startswith("  x: 7/? images")


def test_a_terminal_gets_a_bar_on_stderr_and_nothing_on_stdout(capsys, monkeypatch):
    terminal = io.StringIO()
    terminal.isatty = lambda: True
    monkeypatch.setattr(sys, "stderr", terminal)
    with Progress(5, "val") as bar:
        bar.update(5)
        bar.note("note")
    assert capsys.readouterr().out == ""
    assert "5/5" in terminal.getvalue() and "note" in terminal.getvalue()


def test_disabled_prints_nothing(capsys):
    with Progress(5, "val", enabled=False) as bar:
        bar.update(5)
        bar.note("x")
    assert capsys.readouterr() == ("", "")
