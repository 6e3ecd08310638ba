"""``edgekit device setup``: install this edgekit on a remote board (thin over
:func:`edgekit.devices.setup_device`)."""

from __future__ import annotations

import click


@click.group(short_help="Set up remote boards for bench --device.")
def device() -> None:
    """Set up remote boards (ssh://[user@]host[:port] or a configured NAME) for bench --device.

    \b
    Example:
      edgekit device setup ssh://pi@raspberrypi.local
    """


@device.command(short_help="Install this edgekit's core wheel on a board.")
@click.argument("spec", metavar="NAME|ssh://[user@]host[:port]")
@click.option(
    "--remote-python",
    metavar="PATH",
    help="Python on the board to install for [default: the device's python, else python3].",
)
@click.option(
    "--ssh-option",
    "ssh_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Passed to ssh as -o KEY=VALUE, on top of your ssh config (repeatable).",
)
@click.option(
    "--wheel",
    type=click.Path(dir_okay=False),
    help="Install this edgekit wheel instead of building one from the running edgekit.",
)
@click.option(
    "--no-deps",
    is_flag=True,
    help="Install edgekit only; the board has numpy, click, onnxruntime, ai-edge-litert.",
)
@click.option(
    "--timeout",
    type=float,
    default=1800.0,
    show_default=True,
    help="Seconds pip may take on the board (dependencies can take minutes there).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def setup(
    spec: str,
    remote_python: str | None,
    ssh_options: tuple[str, ...],
    wheel: str | None,
    no_deps: bool,
    timeout: float,
    as_json: bool,
) -> None:
    """Install this edgekit's own core wheel on a board, for bench --device.

    Builds a wheel of the running edgekit (pip wheel --no-deps of its source tree, or its
    installed files packed again), copies it there as a tar stream over ssh (no SFTP
    needed), installs it with `<python> -m pip install --user` (into the venv when the
    board's Python is a venv's): the core only, no TensorFlow. Then checks that
    `<python> -m edgekit env --json` there reports this version. The name edgekit on the
    package index is an unrelated project: never pip install it by name.

    \b
    Examples:
      edgekit device setup ssh://pi@raspberrypi.local
      edgekit device setup pi4 --remote-python /home/pi/venv/bin/python
      edgekit device setup ssh://root@10.0.0.7:2222 --ssh-option IdentityFile=~/.ssh/board
    """
    from edgekit.devices import is_local, parse_ssh_option, resolve_device, setup_device
    from edgekit.errors import EdgekitError

    if is_local(spec):
        raise EdgekitError(
            f"device setup installs edgekit on a remote board; {spec!r} is this machine "
            "(pass ssh://[user@]host[:port] or a device NAME)"
        )
    target = resolve_device(spec)
    options = [parse_ssh_option(o) for o in ssh_options]
    result = setup_device(
        target,
        python=remote_python,
        ssh_options=options,
        wheel=wheel,
        no_deps=no_deps,
        timeout=timeout,
        on_step=lambda message: click.echo(f"{message} ...", err=True),
    )
    if as_json:
        import json

        click.echo(json.dumps(result.to_json(), indent=2))
        return
    where = "the user's site-packages (--user)" if result.user else "its virtual environment"
    was = f" (was {result.previous})" if result.previous else ""
    click.echo(
        f"installed edgekit {result.version}{was} on {target.label} for {result.python} "
        f"(Python {result.python_version}), into {where}: {result.location}"
    )
    click.echo(f"built from {result.source}: {result.wheel}")
    click.echo(f"verified: {result.python} -m edgekit env --json reports edgekit {result.version}")
