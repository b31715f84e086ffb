"""A click group whose subcommands are imported on first use (``name -> "module:attr"``)."""

from __future__ import annotations

import click

from talkbench.registry import import_string


def lazy_group(name: str, commands: dict[str, str], help: str) -> click.Group:
    """Build a group; a subcommand whose module fails to import reports why instead of crashing."""

    class _Group(click.Group):
        def list_commands(self, ctx: click.Context) -> list[str]:
            return sorted(commands)

        def get_command(self, ctx: click.Context, cmd: str) -> click.Command | None:
            spec = commands.get(cmd)
            if spec is None:
                return None
            try:
                return import_string(spec)
            except (ImportError, AttributeError) as exc:
                err = str(exc)

                @click.command(name=cmd, help=f"(unavailable: {err})")
                def _missing() -> None:
                    raise click.ClickException(f"'talkbench {name} {cmd}' is not available: {err}")

                return _missing

    return _Group(name=name, help=help)


data = lazy_group(
    "data",
    {
        "crop": "talkbench._cli.data_crop:crop",
        "synth": "talkbench._cli.data_synth:synth",
    },
    "Prepare datasets: face crops, the synthetic corpus.",
)

train = lazy_group(
    "train",
    {
        "cals": "cals.cli:train_cals",
        "wav2lip": "baselines.wav2lip.cli:train_wav2lip",
        "syncnet": "talkbench.critics.cli:train_syncnet",
        "lipreader": "talkbench.critics.lipreader_cli:train_lipreader",
    },
    "Train a model (CALS, baselines, critics) on any dataset the suite reads.",
)
