"""``talkbench train wav2lip``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click


@click.command(name="wav2lip")
@click.option("--stage", type=click.Choice(["expert", "generator", "all"]), default="all", show_default=True)
@click.option("--dataset", default="synth-lrs2", show_default=True)
@click.option("--root", type=click.Path(file_okay=False), default=None)
@click.option("--width", default=0.25, show_default=True, help="Channel width (1.0 = the official models).")
@click.option("--expert-steps", default=1500, show_default=True)
@click.option("--steps", "generator_steps", default=1500, show_default=True, help="Generator steps.")
@click.option("--batch-size", default=16, show_default=True)
@click.option("--lr", default=1e-4, show_default=True)
@click.option("--gan", is_flag=True, help="hq_wav2lip_train.py: visual quality discriminator (0.07), sync 0.03.")
@click.option("--eval-every", default=250, show_default=True)
@click.option("--max-clips", type=int, default=None)
@click.option("--seed", default=0, show_default=True)
@click.option("--out", type=click.Path(file_okay=False), default="runs/train-wav2lip", show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--resume", is_flag=True)
@click.option("--export", type=click.Path(dir_okay=False), default=None,
              help="Write the generator as fp16 safetensors + card (e.g. checkpoints/wav2lip-synth.safetensors).")
def train_wav2lip(stage: str, dataset: str, root: str | None, width: float, expert_steps: int, generator_steps: int,
                  batch_size: int, lr: float, gan: bool, eval_every: int, max_clips: int | None, seed: int, out: str,
                  device: str, resume: bool, export: str | None) -> None:
    """Train Wav2Lip (lip-sync expert, then the generator) with the official recipe."""
    from baselines.wav2lip.train import Wav2LipClips, Wav2LipTrainConfig, Wav2LipTrainer
    from talkbench.runner import resolve_device
    from talkbench.weights import save_weights

    cfg = Wav2LipTrainConfig(dataset=dataset, root=root, width=width, expert_steps=expert_steps,
                             generator_steps=generator_steps, batch_size=batch_size, lr=lr, gan=gan,
                             eval_every=eval_every, max_clips=max_clips, seed=seed)
    train = Wav2LipClips.from_dataset(cfg, cfg.split, cfg.max_clips)
    val = Wav2LipClips.from_dataset(cfg, cfg.val_split, 20)
    trainer = Wav2LipTrainer(cfg, out, resolve_device(device), train, val)
    if resume and trainer.resume():
        click.echo(f"resumed at {trainer.step}")
    stages = ("expert", "generator") if stage == "all" else (stage,)
    last = trainer.fit(stages)
    metrics = {"expert_val_loss": trainer.expert_eval(), **trainer.generator_eval(), **last}
    (Path(out) / "metrics.json").write_text(json.dumps(metrics, indent=2))
    click.echo(f"metrics: {metrics}")
    if export:
        from talkbench.distributed import unwrap

        card = save_weights(Path(export), unwrap(trainer.gen).state_dict(), {
            "command": "talkbench train wav2lip " + " ".join(sys.argv[3:]),
            "data": {"dataset": dataset, "split": cfg.split, "clips": len(train)},
            "seed": seed, "metrics": metrics, "steps": trainer.step,
            "config": {"width": width, **{k: v for k, v in cfg.__dict__.items() if k != "width"}},
            "note": "Wav2Lip trained on the synthetic corpus with talkbench's reimplementation of the official recipe",
        })
        click.echo(f"exported {export} (sha256 {card['sha256'][:16]}...)")
