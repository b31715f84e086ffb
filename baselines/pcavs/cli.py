"""``talkbench train pcavs``."""

from __future__ import annotations

import time

import click


@click.command(name="pcavs")
@click.option("--dataset", default="synth-lrs2", show_default=True)
@click.option("--root", type=click.Path(file_okay=False), default=None)
@click.option("--split", default="train", show_default=True)
@click.option("--val-split", default="val", show_default=True, help="Validation split (missing: train clips).")
@click.option("--width", default=0.125, show_default=True, help="Channel width (1.0 = the official networks).")
@click.option("--size", default=112, show_default=True, help="Model crop size, 7*2^k (224 = official).")
@click.option("--steps", default=3000, show_default=True)
@click.option("--batch-size", default=8, show_default=True)
@click.option("--lr", default=1e-3, show_default=True, help="Official --lr; G uses lr/2, D lr*2 (TTUR).")
@click.option("--l1-weight", default=10.0, show_default=True, help="L1 reconstruction weight (stands in for VGG).")
@click.option("--sync-steps", default=0, show_default=True,
              help="First train E and A_sync alone on the alignment losses for this many steps (official 'sync' mode).")
@click.option("--sync-lr", default=1e-4, show_default=True, help="Adam learning rate of the sync stage.")
@click.option("--sync-align", type=click.Choice(["per-frame", "first-frame"]), default="per-frame", show_default=True,
              help="Frames E's mouth feature is trained on: aligned per frame from the dataset's exact landmarks "
                   "(the official data's alignment; the synthetic corpus has them) or with the adapter's one transform.")
@click.option("--mouth-weight", default=0.0, show_default=True,
              help="Extra L1 on the template's mouth box (0 = none; > 0 is a deviation, recorded on the card).")
@click.option("--eval-every", default=250, show_default=True)
@click.option("--max-clips", type=int, default=None)
@click.option("--minutes", type=float, default=None, help="Stop (saving state, resumable) after this wall time.")
@click.option("--seed", default=0, show_default=True)
@click.option("--out", type=click.Path(file_okay=False), default="runs/train-pcavs", show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--resume", is_flag=True)
@click.option("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice).")
@click.option("--export", type=click.Path(dir_okay=False), default=None,
              help="Write the four networks as fp16 safetensors + card (e.g. talkbench/checkpoints/pcavs-synth.safetensors).")
def train_pcavs(dataset: str, root: str | None, split: str, val_split: str, width: float, size: int, steps: int,
                batch_size: int, lr: float, l1_weight: float, sync_steps: int, sync_lr: float, sync_align: str, mouth_weight: float, eval_every: int, max_clips: int | None,
                minutes: float | None, seed: int, out: str, device: str, resume: bool, threads: int | None,
                export: str | None) -> None:
    """Train PC-AVS (no official training code exists) with the losses of its model code."""
    from baselines.pcavs.train import PCAVSClips, PCAVSTrainConfig, PCAVSTrainer, weights_state_dict
    from talkbench.errors import TalkbenchError
    from talkbench.runner import resolve_device
    from talkbench.training import command_history, command_line, export_weights, set_threads, write_metrics

    set_threads(threads)
    cfg = PCAVSTrainConfig(dataset=dataset, root=root, split=split, val_split=val_split, width=width, size=size,
                           steps=steps, batch_size=batch_size, lr=lr, l1_weight=l1_weight, sync_steps=sync_steps,
                           sync_lr=sync_lr, sync_align=sync_align, mouth_weight=mouth_weight,
                           eval_every=eval_every,
                           max_clips=max_clips, seed=seed)
    deadline = time.time() + 60 * minutes if minutes else None
    train = PCAVSClips.from_dataset(cfg, split, max_clips)
    try:
        val = PCAVSClips.from_dataset(cfg, val_split, 20)
    except TalkbenchError as exc:
        click.echo(f"no validation clips ({exc}); evaluating on the training clips", err=True)
        val = None
    trainer = PCAVSTrainer(cfg, out, resolve_device(device), train, val)
    command = command_line()
    commands = command_history(out, command, resume)  # every invocation of this run, this one last
    if resume and trainer.resume():
        click.echo(f"resumed at step {trainer.step}")
    trainer.commands = commands
    last = trainer.fit(deadline=deadline)
    metrics = write_metrics(out, {**last, **trainer.evaluate()}, resume)
    click.echo(f"metrics: {metrics}")
    if export:
        card = export_weights(
            export, weights_state_dict(trainer.model), command=command, commands=trainer.commands,
            data={"dataset": dataset, "split": split, "clips": len(train), "clips_aligned_per_frame": train.per_frame},
            seed=seed, metrics=metrics,
            steps=trainer.step, config={"width": width, "size": size, "num_classes": trainer.cfg.num_classes, "batch_size": batch_size, "lr": lr,
                                        "l1_weight": l1_weight, "sync_steps": sync_steps, "sync_lr": sync_lr, "sync_align": sync_align, "mouth_weight": mouth_weight,
                                        "contrastive_weight": trainer.cfg.contrastive_weight},
            note="PC-AVS trained on the synthetic corpus by talkbench (no official training code exists)",
            deviations=DEVIATIONS + ([f"+ {mouth_weight} x L1 on the template's mouth box of the model crop "
                                      "(train.mouth_box): the reconstruction is paid mostly for the mouth"]
                                     if mouth_weight > 0 else []), edge_frames="every frame generated; mel padded with silence rows (0) so frame t "
                                               "always uses rows (t-2)*4..(t+3)*4")
        click.echo(f"exported {export} (sha256 {card['sha256'][:16]}...)")


DEVIATIONS = [
    "width-scaled networks (channels x width) at a smaller crop (size px instead of 224)",
    "no VGG19/VGGFace perceptual losses (no weights on disk); L1 reconstruction in their place",
    "no identity classification loss (no speaker labels) and no L2-softmax disentanglement term",
    "driving pose = E on the target frame with its lower half masked in the protocol crop (the benchmark's pose prior)",
    "generator inputs and targets aligned with the clip's first-frame transform only (one transform per clip), as "
    "the adapter does; E's mouth feature (the sync losses) sees the target aligned per frame from the corpus's exact "
    "landmarks (the official data's alignment) unless --sync-align first-frame",
    "all networks trained jointly from scratch (the paper pretrains V/E/A_sync stages on VoxCeleb2)",
]
