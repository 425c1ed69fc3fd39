"""The ``spikedetect`` command line.

Each subcommand lives in its own module and is imported only when it runs, so
``spikedetect --help`` stays fast and a broken optional part cannot break the
others.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from spikedetect import __version__
from spikedetect.gc_policy import tune_collector

# name -> "module:attribute" of a click command; loaded on first use.
_COMMANDS: dict[str, str] = {
    "demo": "spikedetect.demo:demo",
    "kafka": "spikedetect.kafka_local.cli:kafka",
    "simulate": "spikedetect.sim.cli_simulate:simulate",
    "evaluate": "spikedetect.evaluate.cli_evaluate:evaluate_command",
    "replay": "spikedetect.replay.cli_replay:replay",
    "report": "spikedetect.evaluate.cli_report:report",
    "worker": "spikedetect.stream.cli:worker",
    "produce": "spikedetect.stream.cli:produce",
    "tail": "spikedetect.stream.cli:tail",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, _, attr = target.partition(":")
        command: Any = getattr(importlib.import_module(module), attr)
        return command  # type: ignore[no-any-return]


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="spikedetect")
def main() -> None:
    """Detect outage spikes in streams of user problem reports."""
    tune_collector()
