"""``talkbench paper``: every table and figure of the CALS paper's evaluation, one page."""

from __future__ import annotations

import sys
from contextlib import nullcontext

import click


@click.command(name="paper")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="Paper YAML (datasets, methods and weights, metrics, sweep, masked span, ablation); "
                   "default: the shipped paper-synth.yaml, which needs nothing but this package.")
@click.option("--run-dir", type=click.Path(file_okay=False), default="runs/paper", show_default=True,
              help="Parent folder: one run directory per part, paper.json, and paper/index.html.")
@click.option("--page-only", is_flag=True, help="Rebuild the page from the parts already run; run nothing.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def paper(config_path: str | None, run_dir: str, page_only: bool, quiet: bool) -> None:
    """Run (or resume) Table 1 on every dataset, Table 3 (lip reading), Table 4 (ablation, trained),
    Fig. 5 (masked audio) and Fig. 6 (context sweep) as ordinary run directories under RUN_DIR, then
    write RUN_DIR/paper/index.html, paper.md and paper.tex. Finished parts are skipped; a part that
    fails is recorded and the others go on (exit 1). A bad config is refused before any work (exit 2)."""
    from talkbench.paper.config import DEFAULT_CONFIG, load_paper_config
    from talkbench.paper.page import build_paper_page
    from talkbench.paper.plan import run_paper

    cfg = load_paper_config(config_path or DEFAULT_CONFIG)
    if page_only:
        click.echo(build_paper_page(run_dir, cfg))
        return
    from talkbench.progress import quiet as no_bars

    with no_bars() if quiet else nullcontext():
        result = run_paper(cfg, run_dir, progress=not quiet,
                           on_part=lambda name, state: click.echo(f"[paper] {name}: {state}", err=True))
    for name, p in result.status["parts"].items():
        click.echo(f"{name:<18} {p['status']:<8} {p.get('seconds', 0):>8.1f} s" + (f"  {p['error']}" if p.get("error") else ""))
    click.echo(f"page: {result.status['page']}")
    if result.failed:
        sys.exit(1)
