"""``talkbench train lipreader``: train (and export) a lip-reading critic."""

from __future__ import annotations

from pathlib import Path

import click

from talkbench.training import command_line, export_weights, record_exported_metrics, set_threads


@click.command(name="lipreader")
@click.option("--dataset", default="synth-lrw", show_default=True, help="Any word-level dataset (LRW layout).")
@click.option("--root", type=click.Path(file_okay=False), default=None, help="Dataset root (default: the reader's).")
@click.option("--vocab", type=int, default=None,
              help="Train on the first N LRW words only (the card lists them; other words score NaN).")
@click.option("--make-corpus", "make_corpus", type=int, default=None, metavar="K",
              help="With --vocab N and synth-lrw: first generate a synthetic corpus of the N words with K "
                   "training clips per word (K/6 val, K/4 test) into DIR/corpus and train on it.")
@click.option("--steps", default=600, show_default=True)
@click.option("--width", default=0.25, show_default=True, help="Channel width (1.0 = the official model).")
@click.option("--batch-size", default=8, show_default=True)
@click.option("--lr", default=3e-3, show_default=True)
@click.option("--max-clips", type=int, default=None)
@click.option("--seed", default=0, show_default=True)
@click.option("--roi-pipeline", "roi_pipeline", type=click.Choice(["legacy", "preprocessing"]), default="legacy",
              show_default=True, help="Mouth-ROI pipeline (mpc001's legacy_preprocessing/ or preprocessing/); "
                                      "recorded on the card, and the scorer crops with it.")
@click.option("--threads", default=0, show_default=True, help="torch CPU threads (0 = torch's default).")
@click.option("--out", type=click.Path(file_okay=False), default="runs/train-lipreader", show_default=True)
@click.option("--resume", is_flag=True, help="Continue from OUT/last.pt.")
@click.option("--export", type=click.Path(dir_okay=False), default=None,
              help="Write fp16 safetensors + card here (e.g. talkbench/checkpoints/lipreader-synth.safetensors).")
def train_lipreader(dataset: str, root: str | None, vocab: int | None, make_corpus: int | None, steps: int,
                    width: float, batch_size: int, lr: float, max_clips: int | None, seed: int, roi_pipeline: str,
                    threads: int, out: str, resume: bool, export: str | None) -> None:
    """Train an LRW-style lip reader; prints held-out top-1/top-5 on ground-truth clips."""
    from talkbench.critics.train_lipreader import LipReaderTrainConfig, build_vocab_corpus
    from talkbench.critics.train_lipreader import train_lipreader as run
    from talkbench.errors import TalkbenchError

    set_threads(threads)
    try:
        if make_corpus:
            if vocab is None or dataset != "synth-lrw":
                raise click.UsageError("--make-corpus needs --vocab N and --dataset synth-lrw")
            per = {"train": make_corpus, "val": max(1, make_corpus // 6), "test": max(1, make_corpus // 4)}
            root = str(build_vocab_corpus(Path(out) / "corpus", vocab, per, seed=seed))
        cfg = LipReaderTrainConfig(dataset=dataset, root=root, vocab=vocab, steps=steps, width=width,
                                   batch_size=batch_size, lr=lr, max_clips=max_clips, seed=seed,
                                   roi_pipeline=roi_pipeline)
        res = run(cfg, out, resume=resume)
    except TalkbenchError as exc:
        raise click.ClickException(str(exc)) from exc
    m = res["metrics"]
    click.echo(f"val top1 {m['val']['top1']:.3f} top5 {m['val']['top5']:.3f} ({m['val']['clips']} clips); "
               f"test top1 {m['test']['top1']:.3f} top5 {m['test']['top5']:.3f} ({m['test']['clips']} clips)")
    if export:
        from talkbench.critics.lipreader import load_lipreader
        from talkbench.critics.train_lipreader import evaluate
        export_weights(
            export, res["model"].state_dict(), command=command_line(),
            data={"dataset": dataset, "root": root, "vocab_words": len(res["vocab"]), "train_clips": m["train_clips"]},
            seed=seed, config=res["config"], vocabulary=res["vocab"], roi_pipeline=roi_pipeline,
            note="critic trained on the synthetic corpus: its accuracy is only comparable within that domain")
        # The card's numbers are those of the file users get (fp16), not of the in-memory model.
        shipped = load_lipreader(export)
        metrics = {"ground_truth_val": evaluate(shipped, res["val"]), "ground_truth_test": evaluate(shipped, res["test"]),
                   "train_seconds": m["train_seconds"], "steps": m["steps"]}
        card = record_exported_metrics(export, metrics)
        click.echo(f"exported {export} (sha256 {card['sha256'][:16]}...): {metrics}")
