"""``talkbench train syncnet`` (and, when it lands, ``lipreader``)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from talkbench._cli.command_line import command_line


@click.command(name="syncnet")
@click.option("--dataset", default="synth-lrs2", show_default=True)
@click.option("--root", type=click.Path(file_okay=False), default=None)
@click.option("--steps", default=600, show_default=True)
@click.option("--width", default=0.25, show_default=True, help="Channel width (1.0 = the official model).")
@click.option("--max-clips", type=int, default=None)
@click.option("--seed", default=0, show_default=True)
@click.option("--out", type=click.Path(file_okay=False), default="runs/train-syncnet", show_default=True)
@click.option("--resume", is_flag=True)
@click.option("--res-aug", default=0, show_default=True,
              help="Resize half the training windows down to a random side >= this and back (0: off).")
@click.option("--init", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Start from these critic weights (fine-tuning).")
@click.option("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice).")
@click.option("--export", type=click.Path(dir_okay=False), default=None,
              help="Write fp16 safetensors + card here (e.g. checkpoints/syncnet-synth.safetensors).")
def train_syncnet(dataset: str, root: str | None, steps: int, width: float, max_clips: int | None, seed: int,
                  out: str, resume: bool, res_aug: int, init: str | None, threads: int | None,
                  export: str | None) -> None:
    """Train a SyncNet critic with the multi-way matching loss; prints held-out offset detection."""

    from talkbench.critics.train_syncnet import SyncNetTrainConfig
    from talkbench.critics.train_syncnet import train_syncnet as run
    from talkbench.weights import save_weights, update_card, weights_record

    if threads:
        import torch

        torch.set_num_threads(threads)
    cfg = SyncNetTrainConfig(dataset=dataset, root=root, steps=steps, width=width, max_clips=max_clips, seed=seed,
                             res_aug=res_aug, init=init)
    # When exporting, the sanity checks run once, on the file users get (fp16), not on the in-memory model.
    res = run(cfg, out, resume=resume, evaluate=export is None)
    click.echo(f"metrics: {res['metrics']}")
    if export:
        from talkbench.critics.syncnet import load_syncnet
        from talkbench.critics.train_syncnet import critic_sanity

        card = {
            "command": command_line(),
            "data": {"dataset": dataset, "split": cfg.split, "clips": max_clips or "all"},
            "seed": seed, "config": res["config"],
            **({"init": weights_record(init, portable=True)} if init else {}),
            "note": "critic trained on the synthetic corpus: its LSE numbers are only comparable within that domain",
        }
        save_weights(Path(export), res["model"].state_dict(), card)
        metrics = {**res["metrics"], **critic_sanity(load_syncnet(export), res["val"], cfg.view)}
        (Path(out) / "metrics.json").write_text(json.dumps(metrics, indent=2))
        card = update_card(export, metrics=metrics)
        click.echo(f"exported {export} (sha256 {card['sha256'][:16]}...): {metrics}")
