"""``talkbench train audio2head``."""

from __future__ import annotations

import click

DEVIATIONS = [
    "no official training code: recipe reconstructed from the paper and the FOMM config vox-256.yaml carries",
    "multi-scale L1 reconstruction instead of FOMM's VGG perceptual loss (no VGG weights on disk)",
    "equivariance under a random affine warp only (FOMM adds a thin-plate spline)",
    "head pose = the synthetic corpus's exact in-plane pose mapped to rotation (0, 0, angle) and a translation",
    "width-scaled channels (card config.width); clips are the protocol's 128-px crops resized to 256",
]


@click.command(name="audio2head")
@click.option("--stage", type=click.Choice(["kp", "audio2kp", "pose", "all"]), default="all", show_default=True)
@click.option("--dataset", default="synth-lrs2", show_default=True)
@click.option("--root", type=click.Path(file_okay=False), default=None)
@click.option("--split", default="train", show_default=True)
@click.option("--val-split", default="val", show_default=True)
@click.option("--width", default=0.125, show_default=True, help="Channel width (1.0 = the official networks).")
@click.option("--kp-steps", default=300, show_default=True)
@click.option("--audio2kp-steps", default=60, show_default=True)
@click.option("--pose-steps", default=300, show_default=True)
@click.option("--minutes", default=None, type=float,
              help="Wall-clock budget in minutes, split 45/35/20 between the stages (steps still cap).")
@click.option("--batch-size", default=4, show_default=True)
@click.option("--pose-frames", default=32, show_default=True,
              help="Frames per audio2pose training sequence (also the shortest usable clip).")
@click.option("--lr", default=2e-4, show_default=True)
@click.option("--mouth-weight", default=0.0, show_default=True,
              help="kp stage: extra L1 on the driving frame's mouth box from the dataset's exact landmarks "
                   "(0 = none; > 0 is a deviation, recorded on the card).")
@click.option("--eval-every", default=50, show_default=True)
@click.option("--max-clips", type=int, default=64, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--out", type=click.Path(file_okay=False), default="runs/train-audio2head", show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--resume", is_flag=True)
@click.option("--threads", type=int, default=None)
@click.option("--export", type=click.Path(dir_okay=False), default=None,
              help="Write the four networks as fp16 safetensors + card (checkpoints/audio2head-synth.safetensors).")
def train_audio2head(stage: str, dataset: str, root: str | None, split: str, val_split: str, width: float,
                     kp_steps: int, audio2kp_steps: int, pose_steps: int, minutes: float | None, batch_size: int, pose_frames: int,
                     lr: float, mouth_weight: float, eval_every: int, max_clips: int | None, seed: int, out: str, device: str,
                     resume: bool, threads: int | None, export: str | None) -> None:
    """Train Audio2Head: keypoints + generator, then audio->keypoints, then audio->pose."""
    from baselines.audio2head.checkpoint import flatten_state_dicts
    from baselines.audio2head.train import STAGES, Audio2HeadTrainConfig, Audio2HeadTrainer, load_clips
    from talkbench.errors import TalkbenchError
    from talkbench.runner import resolve_device
    from talkbench.training import command_history, command_line, export_weights, set_threads, write_metrics

    set_threads(threads)
    cfg = Audio2HeadTrainConfig(dataset=dataset, root=root, split=split, val_split=val_split, width=width,
                                kp_steps=kp_steps, audio2kp_steps=audio2kp_steps, pose_steps=pose_steps,
                                batch_size=batch_size, pose_frames=pose_frames, lr=lr, mouth_weight=mouth_weight, eval_every=eval_every,
                                max_clips=max_clips, seed=seed)
    train = load_clips(cfg, split, max_clips)
    try:
        val = load_clips(cfg, val_split, 8)
    except TalkbenchError as exc:
        click.echo(f"no validation clips ({exc}); evaluating on training clips", err=True)
        val = None
    trainer = Audio2HeadTrainer(cfg, out, resolve_device(device), train, val)
    command = command_line()
    commands = command_history(out, command, resume)
    if resume and trainer.resume():
        click.echo(f"resumed at {trainer.step}")
    trainer.commands = commands
    stages = STAGES if stage == "all" else (stage,)
    budget = None
    if minutes:
        share = {"kp": 0.45, "audio2kp": 0.35, "pose": 0.20}
        total = sum(share[s] for s in stages)
        budget = {s: minutes * 60 * share[s] / total for s in stages}
    metrics = write_metrics(out, trainer.fit(stages, budget, log=click.echo), resume)
    click.echo(f"metrics: {metrics}")
    if export:
        card = export_weights(
            export, flatten_state_dicts(trainer.nets), command=command, commands=commands,
            data={"dataset": dataset, "split": split, "clips": len(train)}, seed=seed, metrics=metrics,
            config={"width": width, **{k: v for k, v in cfg.__dict__.items() if k != "width"}},
            note="Audio2Head trained on the synthetic corpus with talkbench's reconstruction of its recipe",
            stage_steps=dict(trainer.step),
            deviations=DEVIATIONS + [f"kp steps {t['steps'][0]}..{t['steps'][1]}: + {t['weight']} x L1 on the driving "
                                     "frame's mouth box (exact landmarks, points 48..67 grown 25%)"
                                     for t in trainer.mouth_terms],
            adapter="reference = protocol reference frame resized to 256; 256-px outputs area-resized into the "
                    "protocol crop")
        click.echo(f"exported {export} (sha256 {card['sha256'][:16]}...)")
