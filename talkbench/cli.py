"""The ``talkbench`` command: a thin click layer over the library API.

Each subcommand lives in ``talkbench/_cli/<name>.py`` and is imported lazily, so ``talkbench
--help`` stays fast and a broken optional dependency only breaks its own command.
Exit codes (contract): 0 success; 1 some items failed; 2 usage/config error; 3 regression.
"""

from __future__ import annotations

import sys

import click

from talkbench._cli.lazy import LazyGroup
from talkbench.errors import ConfigError, TalkbenchError

_COMMANDS = {
    "doctor": "talkbench._cli.doctor:doctor",
    "data": "talkbench._cli.lazy:data",
    "score": "talkbench._cli.score:score",
    "run": "talkbench._cli.run:run",
    "report": "talkbench._cli.report:report",
    "compare": "talkbench._cli.compare:compare",
    "train": "talkbench._cli.lazy:train",
    "sweep": "talkbench._cli.experiments:sweep",
    "ablate": "talkbench._cli.experiments:ablate",
    "study": "talkbench._cli.study:study",
    "paper": "talkbench._cli.paper:paper",
}


class _LazyGroup(LazyGroup):
    lazy_commands = _COMMANDS

    def invoke(self, ctx: click.Context):
        # Here, not only in main(), so that click's test runner and ``python -m`` see the same codes.
        try:
            return super().invoke(ctx)
        except TalkbenchError as exc:  # what escapes a command is a usage/configuration error
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="talkbench")
def cli() -> None:
    """talkbench: evaluate talking-face generators (CALS, Wav2Lip, ...) on LRW, LRS2, HDTF
    and an offline synthetic corpus, with PSNR/SSIM/LMD/LSE-D/LSE-C and lip-reading accuracy.

    \b
    Exit codes:
      0  success
      1  some items failed (recorded as errors; the run or score completed), including a bad
         input file given to `score`
      2  usage or configuration error (unknown method/metric/dataset, bad option, missing root,
         a run directory holding a different run); nothing was scored
      3  `compare --fail-on-regression` found a regression
    """


def main() -> None:
    try:
        rc = cli.main(standalone_mode=False)
        if isinstance(rc, int) and rc:
            sys.exit(rc)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2 if exc.exit_code in (1, 2) else exc.exit_code)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except TalkbenchError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except SystemExit:
        raise


if __name__ == "__main__":
    main()
