"""``--help`` of every command and progress bars (issue 16).

Every option has a description that says more than its name, and shows its default
(flags, required and repeatable options aside); the long-running commands draw a progress
bar with %, a rate and the time left.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from spikedetect.cli import main


def _commands() -> list[tuple[str, click.Command]]:
    ctx = click.Context(main)
    out = []
    for name in main.list_commands(ctx):
        cmd = main.get_command(ctx, name)
        assert cmd is not None
        if isinstance(cmd, click.Group):
            sub = click.Context(cmd, parent=ctx, info_name=name)
            out += [(f"{name} {n}", c) for n in cmd.list_commands(sub) if (c := cmd.get_command(sub, n))]
        else:
            out.append((name, cmd))
    return out


@pytest.mark.parametrize("name, cmd", _commands(), ids=[n for n, _ in _commands()])
def test_every_option_is_described_with_its_default(name: str, cmd: click.Command) -> None:
    ctx = click.Context(cmd, info_name=name, **cmd.context_settings)
    assert cmd.help and len(cmd.help) > 20, name
    problems = []
    for p in cmd.params:
        if not isinstance(p, click.Option) or p.hidden:
            continue
        record = p.get_help_record(ctx)
        text = record[1] if record else ""
        words = (p.help or "").strip(" .").lower()
        if len(words) < 12 or words in {p.name.replace("_", " "), (p.name or "").replace("_", "-")}:
            problems.append(f"{p.opts[0]}: help {p.help!r}")
        if not (p.is_flag or p.required or p.multiple or p.count) and "default:" not in text:
            problems.append(f"{p.opts[0]}: no default shown")
        if "default: (" in text:
            problems.append(f"{p.opts[0]}: default in parentheses: {text}")
    assert not problems, f"{name}: {problems}"


def test_worker_help_lists_its_settings_with_env_and_default() -> None:
    ctx = click.Context(main)
    worker = main.get_command(ctx, "worker")
    assert worker is not None
    options = [p for p in worker.params if isinstance(p, click.Option)]
    assert len(options) >= 50
    wctx = click.Context(worker, info_name="worker")
    for p in options:
        record = p.get_help_record(wctx)
        assert record is not None and "[env SPIKEDETECT_" in record[1], p.opts


def _progress_run(args: list[str], cwd: Path) -> str:
    """stderr of a command run as on a terminal (FORCE_COLOR makes rich draw the bar)."""
    env = {**os.environ, "FORCE_COLOR": "1", "COLUMNS": "160"}
    res = subprocess.run([sys.executable, "-m", "spikedetect", *args], cwd=cwd, env=env, capture_output=True,
                         timeout=300, check=False)  # fmt: skip
    assert res.returncode == 0, res.stderr.decode()[-2000:]
    return res.stderr.decode()


def test_long_commands_draw_progress_with_percent_rate_and_time_left(tmp_path: Path) -> None:
    sim = _progress_run(["simulate", "--days", "2", "--scale", "0.2", "--out", "r.jsonl.gz", "--truth", "t.json",
                         "--progress"], tmp_path)  # fmt: skip
    rep = _progress_run(["replay", "r.jsonl.gz", "--out", "i.jsonl", "--progress", "--batch", "2000"], tmp_path)
    html = _progress_run(["report", "--events", "r.jsonl.gz", "--incidents", "i.jsonl", "--out", "r.html",
                          "--progress"], tmp_path)  # fmt: skip
    for name, err in (("simulate", sim), ("replay", rep), ("report", html)):
        assert "%" in err and "/s" in err and "left" in err, (name, err[-1500:])
