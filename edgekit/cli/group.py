"""The ``edgekit`` click group: its help, ``--version``, and every command."""

from __future__ import annotations

import click

from edgekit._version import __version__
from edgekit.cli.bench import bench, compare, report
from edgekit.cli.device import device
from edgekit.cli.diagnose import diagnose
from edgekit.cli.info import env, estimate, inspect
from edgekit.cli.model import demo, export, train
from edgekit.cli.predict import predict


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    invoke_without_command=True,
)
@click.version_option(__version__, prog_name="edgekit")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Train small Keras models, export them for devices, benchmark them honestly.

    \b
    Example:
      edgekit train                    # digits MLP -> runs/<name>/, runs/latest
      edgekit export --quantize all    # TFLite variants of runs/latest -> runs/latest/export
      edgekit bench                    # latency and accuracy of every artifact

    Shell completion (bash; zsh and fish alike with zsh_source, fish_source):
    eval "$(_EDGEKIT_COMPLETE=bash_source edgekit)"
    """
    if ctx.invoked_subcommand is None:  # bare `edgekit`: the help, and exit 0
        click.echo(ctx.get_help())


for _command in (train, export, bench, inspect, estimate, diagnose, compare, report, demo, env):
    cli.add_command(_command)
cli.add_command(predict)
cli.add_command(device)
