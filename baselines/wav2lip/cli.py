"""``talkbench train wav2lip``."""

from __future__ import annotations

import click


@click.command(name="wav2lip")
@click.option("--stage", type=click.Choice(["expert", "generator", "all"]), default="all", show_default=True)
@click.option("--dataset", default="synth-lrs2", show_default=True)
@click.option("--root", type=click.Path(file_okay=False), default=None)
@click.option("--split", default="train", show_default=True, help="Training split (HDTF: 'all' or a split file's name).")
@click.option("--val-split", default="val", show_default=True, help="Validation split (missing: train clips).")
@click.option("--width", default=0.25, show_default=True, help="Channel width (1.0 = the official models).")
@click.option("--expert-steps", default=1500, show_default=True)
@click.option("--steps", "generator_steps", default=1500, show_default=True, help="Generator steps.")
@click.option("--batch-size", default=16, show_default=True, help="Generator batch (official: 16).")
@click.option("--expert-batch-size", default=32, show_default=True, help="Expert batch (official: 64).")
@click.option("--lr", default=1e-4, show_default=True, help="Generator Adam lr (official: 1e-4).")
@click.option("--expert-lr", default=1e-4, show_default=True, help="Expert Adam lr (official: 1e-4).")
@click.option("--expert-loss", type=click.Choice(["bce", "multiway"]), default="bce", show_default=True,
              help="bce: official pair loss; multiway: matching pretraining (validation stays BCE).")
@click.option("--face-box", default=None, metavar="X0,Y0,X1,Y1",
              help="Region of the protocol crop used as Wav2Lip's face (fractions); goes on the card.")
@click.option("--sync-weight", type=float, default=None, help="Sync loss weight once on (default: official 0.01; 0.03 with --gan).")
@click.option("--sync-threshold", default=0.75, show_default=True,
              help="Switch the sync loss on when the generated windows' expert BCE is below this (official 0.75).")
@click.option("--gan", is_flag=True, help="hq_wav2lip_train.py: visual quality discriminator (0.07), sync 0.03.")
@click.option("--eval-every", default=250, show_default=True)
@click.option("--max-clips", type=int, default=None)
@click.option("--seed", default=0, show_default=True)
@click.option("--out", type=click.Path(file_okay=False), default="runs/train-wav2lip", show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--resume", is_flag=True)
@click.option("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice).")
@click.option("--export", type=click.Path(dir_okay=False), default=None,
              help="Write the generator as fp16 safetensors + card (e.g. talkbench/checkpoints/wav2lip-synth.safetensors).")
def train_wav2lip(stage: str, dataset: str, root: str | None, split: str, val_split: str, width: float, expert_steps: int, generator_steps: int,
                  batch_size: int, expert_batch_size: int, lr: float, expert_lr: float, expert_loss: str, face_box: str | None, sync_weight: float | None, sync_threshold: float, gan: bool, eval_every: int, max_clips: int | None, seed: int, out: str,
                  device: str, resume: bool, threads: int | None, export: str | None) -> None:
    """Train Wav2Lip (lip-sync expert, then the generator) with the official recipe."""
    from baselines.wav2lip.train import Wav2LipClips, Wav2LipTrainConfig, Wav2LipTrainer
    from talkbench.errors import TalkbenchError
    from talkbench.runner import resolve_device
    from talkbench.training import command_line, export_weights, set_threads, write_metrics

    set_threads(threads)
    box = None
    if face_box:
        try:
            box = tuple(float(v) for v in face_box.split(","))
        except ValueError:
            box = ()
        if len(box) != 4 or not (0 <= box[0] < box[2] <= 1 and 0 <= box[1] < box[3] <= 1):
            raise click.BadParameter(f"{face_box!r}: need X0,Y0,X1,Y1 fractions with X0<X1, Y0<Y1 in [0, 1]",
                                     param_hint="--face-box")
    cfg = Wav2LipTrainConfig(dataset=dataset, root=root, split=split, val_split=val_split, width=width, expert_steps=expert_steps,
                             generator_steps=generator_steps, batch_size=batch_size, expert_batch_size=expert_batch_size, lr=lr, expert_lr=expert_lr, gan=gan,
                             expert_loss=expert_loss, face_box=box, sync_weight=sync_weight, sync_threshold=sync_threshold,
                             eval_every=eval_every, max_clips=max_clips, seed=seed)
    train = Wav2LipClips.from_dataset(cfg, cfg.split, cfg.max_clips)
    try:
        val = Wav2LipClips.from_dataset(cfg, cfg.val_split, 20)
    except TalkbenchError as exc:  # e.g. HDTF has no official split: evaluate on training windows
        click.echo(f"no validation clips ({exc}); evaluating on the training clips", err=True)
        val = None
    trainer = Wav2LipTrainer(cfg, out, resolve_device(device), train, val)
    command = command_line()
    trainer.commands.append(command)
    if resume and trainer.resume():
        click.echo(f"resumed at {trainer.step}")
    stages = ("expert", "generator") if stage == "all" else (stage,)
    last = trainer.fit(stages)
    metrics = {**last, "expert_val_loss": trainer.expert_eval(), **trainer.generator_eval()}
    if trainer.rank != 0:  # under torchrun only the first process writes
        return
    write_metrics(out, metrics)
    click.echo(f"metrics: {metrics}")
    if export:
        from talkbench.distributed import unwrap

        card = export_weights(
            export, unwrap(trainer.gen).state_dict(), command=command, commands=trainer.commands,
            data={"dataset": dataset, "split": cfg.split, "clips": len(train)}, seed=seed, metrics=metrics,
            steps=trainer.step, config={"width": width, **{k: v for k, v in cfg.__dict__.items() if k != "width"}},
            note="Wav2Lip trained on the synthetic corpus with talkbench's reimplementation of the official recipe")
        click.echo(f"exported {export} (sha256 {card['sha256'][:16]}...)")
