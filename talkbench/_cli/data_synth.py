"""``talkbench data synth``: generate the synthetic talking-face corpus."""

from __future__ import annotations

import click


@click.command(name="synth")
@click.option("--corpus", type=click.Choice(["synth-lrs2"]), default="synth-lrs2", show_default=True)
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Output folder (LRS2 layout).")
@click.option("--clips", type=int, default=None, help="Clips per split (default: 1200 train, 60 val, 200 test).")
@click.option("--split", "splits", multiple=True, default=("test",), show_default=True,
              type=click.Choice(["train", "val", "test"]), help="Repeatable.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--workers", type=int, default=None, help="Processes (default: up to 2).")
def synth(corpus: str, out: str, clips: int | None, splits: tuple[str, ...], seed: int, workers: int | None) -> None:
    """Write the corpus in the real dataset's layout, with phoneme/landmark/articulation sidecars."""
    from talkbench.datasets.synth.corpus import build_corpus

    root = build_corpus(corpus, out, clips=clips, seed=seed, splits=splits, workers=workers)
    click.echo(f"corpus written to {root} (read it with --dataset {corpus} --root {root})")
