"""``talkbench data synth``: generate the synthetic talking-face corpus."""

from __future__ import annotations

import click


@click.command(name="synth")
@click.option("--corpus", type=click.Choice(["synth-lrs2", "synth-lrw", "synth-hdtf"]), default="synth-lrs2", show_default=True)
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Output folder (written in the real dataset's layout: LRS2, LRW or HDTF).")
@click.option("--clips", type=int, default=None, help="Clips per split (default synth-lrs2: 1200 train, 60 val, 200 test; synth-lrw: 2000, 500, 500; synth-hdtf: 60, 10, 20).")
@click.option("--split", "splits", multiple=True, default=("test",), show_default=True,
              type=click.Choice(["train", "val", "test"]), help="Repeatable.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--workers", type=int, default=None, help="Processes (default: up to 2).")
@click.option("--photo", is_flag=True, help="Every 4th clip from a real portrait (needs the portraits folder).")
def synth(corpus: str, out: str, clips: int | None, splits: tuple[str, ...], seed: int, workers: int | None,
          photo: bool) -> None:
    """Write the corpus in the real dataset's layout, with phoneme/landmark/articulation sidecars."""
    from talkbench.datasets.synth.corpus import build_corpus

    root = build_corpus(corpus, out, clips=clips, seed=seed, splits=splits, workers=workers,
                        photo=photo)
    click.echo(f"corpus written to {root} (read it with --dataset {corpus} --root {root})")
