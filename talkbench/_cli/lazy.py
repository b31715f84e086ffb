"""A click group whose subcommands are imported on first use (``name -> "module:attr"``)."""

from __future__ import annotations

import click

from talkbench.registry import import_string


class LazyGroup(click.Group):
    """A group whose subcommands (``lazy_commands``: name -> "module:attr") are imported on first use;
    one whose module fails to import reports why instead of crashing the whole CLI."""

    lazy_commands: dict[str, str] = {}  # noqa: RUF012 (set per subclass, never mutated)
    prefix = "talkbench"

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self.lazy_commands)

    def get_command(self, ctx: click.Context, cmd: str) -> click.Command | None:
        spec = self.lazy_commands.get(cmd)
        if spec is None:
            return None
        try:
            return import_string(spec)
        except (ImportError, AttributeError) as exc:
            err = str(exc)
            where = f"{self.prefix} {cmd}"

            @click.command(name=cmd, help=f"(unavailable: {err})")
            def _missing() -> None:
                raise click.ClickException(f"'{where}' is not available: {err}")

            return _missing


def lazy_group(name: str, commands: dict[str, str], help: str) -> click.Group:
    """Build a lazy group ``talkbench <name>``."""
    cls = type(f"_{name.title()}Group", (LazyGroup,), {"lazy_commands": commands, "prefix": f"talkbench {name}"})
    return cls(name=name, help=help)


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
        "audio2head": "baselines.audio2head.cli:train_audio2head",
        "pcavs": "baselines.pcavs.cli:train_pcavs",
        "atvgnet": "baselines.atvgnet.cli:train_atvgnet",
        "syncnet": "talkbench.critics.cli:train_syncnet",
        "lipreader": "talkbench.critics.lipreader_cli:train_lipreader",
    },
    "Train a model (CALS, baselines, critics) on any dataset the suite reads.",
)
