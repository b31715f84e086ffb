"""``talkbench train syncnet`` (and, when it lands, ``lipreader``)."""

from __future__ import annotations

import click

from talkbench.training import command_line, record_exported_metrics, set_threads, write_metrics


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
              help="Write fp16 safetensors + card here (e.g. talkbench/checkpoints/syncnet-synth.safetensors).")
def train_syncnet(dataset: str, root: str | None, steps: int, width: float, max_clips: int | None, seed: int,
                  out: str, resume: bool, res_aug: int, init: str | None, threads: int | None,
                  export: str | None) -> None:
    """Train a SyncNet critic with the multi-way matching loss; prints held-out offset detection."""

    from talkbench.critics.train_syncnet import SyncNetTrainConfig
    from talkbench.critics.train_syncnet import train_syncnet as run
    from talkbench.training import export_weights
    from talkbench.weights import weights_record

    set_threads(threads)
    cfg = SyncNetTrainConfig(dataset=dataset, root=root, steps=steps, width=width, max_clips=max_clips, seed=seed,
                             res_aug=res_aug, init=init)
    # When exporting, the sanity checks run once, on the file users get (fp16), not on the in-memory model.
    res = run(cfg, out, resume=resume, evaluate=export is None)
    click.echo(f"metrics: {res['metrics']}")
    if export:
        from talkbench.critics.syncnet import load_syncnet
        from talkbench.critics.train_syncnet import critic_sanity

        export_weights(
            export, res["model"].state_dict(), command=command_line(),
            data={"dataset": dataset, "split": cfg.split, "clips": max_clips or "all"}, seed=seed,
            config=res["config"], **({"init": weights_record(init, portable=True)} if init else {}),
            note="critic trained on the synthetic corpus: its LSE numbers are only comparable within that domain")
        metrics = write_metrics(out, {**res["metrics"], **critic_sanity(load_syncnet(export), res["val"], cfg.view)})
        card = record_exported_metrics(export, metrics)
        click.echo(f"exported {export} (sha256 {card['sha256'][:16]}...): {metrics}")
