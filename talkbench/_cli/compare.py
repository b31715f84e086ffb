"""``talkbench compare RUN_A RUN_B``: paired regression check (exit 3 on a significant regression)."""

from __future__ import annotations

import sys

import click


@click.command(name="compare")
@click.argument("run_a", type=click.Path(exists=True, file_okay=False))
@click.argument("run_b", type=click.Path(exists=True, file_okay=False))
@click.option("--metrics", default=None,
              help="Comma-separated metrics, as given to `run` (lse = lse_d, lse_c) or as columns (lse_c); "
                   "default: every table metric both runs have. Metrics whose stored versions differ are refused.")
@click.option("--alpha", default=0.05, show_default=True, help="Significance level (Wilcoxon).")
@click.option("--min-effect", default=0.0, show_default=True, help="Ignore differences smaller than this.")
@click.option("--fail-on-regression", is_flag=True, help="Exit 3 when B is significantly worse than A.")
def compare(run_a: str, run_b: str, metrics: str | None, alpha: float, min_effect: float, fail_on_regression: bool) -> None:
    """Compare B against A on the samples both scored; prints a Markdown summary."""
    from talkbench.compare import compare_runs, to_markdown
    from talkbench.errors import ConfigError

    names = [m.strip() for m in metrics.split(",")] if metrics else None
    try:
        verdicts = compare_runs(run_a, run_b, names, alpha=alpha, min_effect=min_effect)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(to_markdown(verdicts, run_a, run_b))
    if fail_on_regression and any(v.regression for v in verdicts):
        sys.exit(3)
