"""``talkbench report RUN_DIR``."""

from __future__ import annotations

import click


@click.command(name="report")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Default: RUN_DIR/report.")
def report(run_dir: str, out: str | None) -> None:
    """Write the HTML report and Markdown/LaTeX/CSV tables for a run."""
    from talkbench.report.html import build_report

    click.echo(build_report(run_dir, out))
