"""``talkbench train synctalkface``."""

from __future__ import annotations

from pathlib import Path

import click


def _parse_box(face_box: str | None) -> tuple[float, float, float, float] | None:
    if not face_box:
        return None
    try:
        box = tuple(float(v) for v in face_box.split(","))
    except ValueError:
        box = ()
    if len(box) != 4 or not (0 <= box[0] < box[2] <= 1 and 0 <= box[1] < box[3] <= 1):
        raise click.BadParameter(f"{face_box!r}: need X0,Y0,X1,Y1 fractions with X0<X1, Y0<Y1 in [0, 1]", param_hint="--face-box")
    return box  # type: ignore[return-value]


@click.command(name="synctalkface")
@click.option("--stage", type=click.Choice(["expert", "generator", "gan", "all"]), default="all", show_default=True,
              help="all = expert, then the generator with the memory losses, then the GAN.")
@click.option("--dataset", default="synth-lrs2", show_default=True)
@click.option("--root", type=click.Path(file_okay=False), default=None)
@click.option("--split", default="train", show_default=True)
@click.option("--val-split", default="val", show_default=True, help="Validation split (missing: train clips).")
@click.option("--width", default=0.125, show_default=True, help="Channel width (1.0 = the authors' models).")
@click.option("--expert-steps", default=1500, show_default=True)
@click.option("--steps", "generator_steps", default=1500, show_default=True, help="Generator steps without the GAN.")
@click.option("--gan-steps", default=0, show_default=True, help="Steps with the quality discriminator (disc_wt 0.2).")
@click.option("--batch-size", default=8, show_default=True, help="Generator batch (authors: 40).")
@click.option("--expert-batch-size", default=32, show_default=True, help="Expert batch (authors: 256).")
@click.option("--lr", default=1e-4, show_default=True, help="Generator + decoder Adam lr (authors: 1e-4).")
@click.option("--disc-lr", default=5e-4, show_default=True, help="Quality discriminator lr (authors: 5e-4).")
@click.option("--expert-lr", default=1e-4, show_default=True, help="Expert lr (authors: 1e-4).")
@click.option("--expert-loss", type=click.Choice(["bce", "multiway"]), default="bce", show_default=True,
              help="bce: the pair loss; multiway: matching pretraining (validation stays BCE).")
@click.option("--face-box", default=None, metavar="X0,Y0,X1,Y1",
              help="Region of the protocol crop used as the 128-px face (fractions); goes on the card.")
@click.option("--eval-every", default=250, show_default=True)
@click.option("--max-clips", type=int, default=None)
@click.option("--seed", default=0, show_default=True)
@click.option("--out", type=click.Path(file_okay=False), default="runs/train-synctalkface", show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--resume", is_flag=True)
@click.option("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice).")
@click.option("--max-minutes", type=float, default=None, help="Stop (after saving) once this much time has passed; continue with --resume.")
@click.option("--init-generator", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Warm-start generator + decoder from a Wav2Lip generator of the same width (a CPU-budget aid, "
                   "not the authors' recipe); only before the generator has trained.")
@click.option("--init-from", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Train an exported SyncTalkFace further (its expert beside it) in a fresh --out: step counters "
                   "and command history come from its card, so --steps/--gan-steps stay totals.")
@click.option("--export", type=click.Path(dir_okay=False), default=None,
              help="Write generator + decoder as fp16 safetensors + card (e.g. talkbench/checkpoints/synctalkface-synth.safetensors); "
                   "the expert goes beside it as <name>-expert.safetensors.")
def train_synctalkface(stage: str, dataset: str, root: str | None, split: str, val_split: str, width: float,
                       expert_steps: int, generator_steps: int, gan_steps: int, batch_size: int, expert_batch_size: int,
                       lr: float, disc_lr: float, expert_lr: float, expert_loss: str, face_box: str | None, eval_every: int,
                       max_clips: int | None, seed: int, out: str, device: str, resume: bool, threads: int | None,
                       max_minutes: float | None, init_generator: str | None, init_from: str | None,
                       export: str | None) -> None:
    """Train SyncTalkFace (128-px expert, generator with the Audio-Lip Memory, GAN) with the authors' recipe."""
    from baselines.synctalkface.model import SIZE
    from baselines.synctalkface.train import STAGES, SyncTalkFaceTrainConfig, SyncTalkFaceTrainer
    from baselines.wav2lip.train import Wav2LipClips
    from talkbench.errors import TalkbenchError
    from talkbench.runner import resolve_device
    from talkbench.training import command_line, set_threads, write_metrics

    set_threads(threads)
    cfg = SyncTalkFaceTrainConfig(dataset=dataset, root=root, split=split, val_split=val_split, width=width,
                                  expert_steps=expert_steps, generator_steps=generator_steps, gan_steps=gan_steps,
                                  batch_size=batch_size, expert_batch_size=expert_batch_size, lr=lr, disc_lr=disc_lr,
                                  expert_lr=expert_lr, expert_loss=expert_loss, face_box=_parse_box(face_box),
                                  eval_every=eval_every, max_clips=max_clips, seed=seed)
    train = Wav2LipClips.from_dataset(cfg, cfg.split, cfg.max_clips, size=SIZE)
    try:
        val = Wav2LipClips.from_dataset(cfg, cfg.val_split, 20, size=SIZE)
    except TalkbenchError as exc:
        click.echo(f"no validation clips ({exc}); evaluating on the training clips", err=True)
        val = None
    trainer = SyncTalkFaceTrainer(cfg, out, resolve_device(device), train, val)
    command = command_line()
    trainer.commands.append(command)
    if resume and trainer.resume():
        click.echo(f"resumed at {trainer.step}")
    if init_from:
        try:
            click.echo(f"continuing {init_from} at {trainer.continue_from(init_from)}")
        except TalkbenchError as exc:
            raise click.UsageError(str(exc)) from exc
    if init_generator:
        try:
            n = trainer.warm_start(init_generator)
        except TalkbenchError as exc:
            raise click.UsageError(str(exc)) from exc
        click.echo(f"warm start: {n} tensors from {init_generator}")
    last = trainer.fit(STAGES if stage == "all" else (stage,), max_minutes=max_minutes)
    metrics = {**last, "expert_val_loss": trainer.expert_eval(), **{f"generator_{k}": v for k, v in trainer.generator_eval().items()}}
    if trainer.rank != 0:
        return
    metrics = write_metrics(out, metrics, resume)
    click.echo(f"metrics: {metrics}")
    if export:
        from baselines.synctalkface.export import export_models

        for path, card in export_models(trainer, Path(export), command=command, clips=len(train), metrics=metrics).items():
            click.echo(f"exported {path} (sha256 {card['sha256'][:16]}...)")
