"""``talkbench train atvgnet``."""

from __future__ import annotations

import click


@click.command(name="atvgnet")
@click.option("--stage", type=click.Choice(["basis", "atnet", "vgnet", "all"]), default="all", show_default=True,
              help="basis: fit the landmark space only; all: basis (unless resumed with one), AT-net, VG-net.")
@click.option("--dataset", default="synth-lrs2", show_default=True, help="Needs exact landmarks (the synthetic corpus).")
@click.option("--root", type=click.Path(file_okay=False), default=None)
@click.option("--split", default="train", show_default=True)
@click.option("--val-split", default="test", show_default=True, help="Held-out clips for the losses on the card.")
@click.option("--at-width", default=0.25, show_default=True, help="AT-net channel width (1.0 = official).")
@click.option("--vg-width", default=0.125, show_default=True, help="VG-net/discriminator width (1.0 = official).")
@click.option("--frames", default=16, show_default=True, help="Frames per training sequence (official 16).")
@click.option("--at-steps", default=2000, show_default=True)
@click.option("--vg-steps", default=400, show_default=True)
@click.option("--at-batch", default=16, show_default=True, help="Official 16.")
@click.option("--vg-batch", default=4, show_default=True, help="Official 10.")
@click.option("--lr", default=2e-4, show_default=True, help="Adam lr, betas (0.5, 0.999) (official).")
@click.option("--max-clips", type=int, default=200, show_default=True, help="Training clips held in memory.")
@click.option("--eval-every", default=200, show_default=True)
@click.option("--landmark-scale", type=float, default=1.0, show_default=True,
              help="Our landmark space is (p / 128 - 0.5) x this (the official multiplies normLmarks by 5).")
@click.option("--mouth-weight", type=float, default=0.0, show_default=True,
              help="Weight of an extra L1 term on the mouth box (0 = the official loss; > 0 is a deviation, on the card).")
@click.option("--budget-min", type=float, default=None, help="Stop (saving state) after this many minutes.")
@click.option("--seed", default=0, show_default=True)
@click.option("--out", type=click.Path(file_okay=False), default="runs/train-atvgnet", show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--resume", is_flag=True)
@click.option("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice).")
@click.option("--export", type=click.Path(dir_okay=False), default=None,
              help="Write both networks as fp16 safetensors + card, the basis beside it as <stem>-basis.npz.")
def train_atvgnet(stage: str, dataset: str, root: str | None, split: str, val_split: str, at_width: float,
                  vg_width: float, frames: int, at_steps: int, vg_steps: int, at_batch: int, vg_batch: int, lr: float,
                  max_clips: int | None, eval_every: int, landmark_scale: float, mouth_weight: float, budget_min: float | None, seed: int, out: str, device: str,
                  resume: bool, threads: int | None, export: str | None) -> None:
    """Train ATVGnet (landmark basis, AT-net, then VG-net with its discriminator) with the released recipes."""
    import shutil
    from pathlib import Path

    from baselines.atvgnet.train import ATVGClips, ATVGTrainConfig, ATVGTrainer
    from talkbench.errors import TalkbenchError
    from talkbench.runner import resolve_device
    from talkbench.training import command_history, command_line, export_weights, set_threads, write_metrics

    set_threads(threads)
    cfg = ATVGTrainConfig(dataset=dataset, root=root, split=split, val_split=val_split, at_width=at_width,
                          vg_width=vg_width, frames=frames, at_steps=at_steps, vg_steps=vg_steps, at_batch=at_batch,
                          vg_batch=vg_batch, lr=lr, max_clips=max_clips, eval_every=eval_every, seed=seed,
                          landmark_scale=landmark_scale, mouth_weight=mouth_weight)
    trainer = ATVGTrainer(cfg, out, resolve_device(device))
    resumed = resume and trainer.resume()
    if resumed:
        click.echo(f"resumed at {trainer.steps}")
    template = trainer.space.template if resumed and trainer.space is not None else None
    trainer.train = ATVGClips.from_dataset(cfg, split, max_clips, template)
    try:
        trainer.val = ATVGClips.from_dataset(cfg, val_split, 20, trainer.train.template)
    except TalkbenchError as exc:
        click.echo(f"no validation clips ({exc}); evaluating on the training clips", err=True)
    if trainer.space is None or stage == "basis":
        trainer.fit_basis()
        click.echo(f"landmark basis {trainer.basis_path}: {len(trainer.train)} clips")
    command = command_line()
    trainer.commands = command_history(out, command, resume)
    stages = {"basis": (), "atnet": ("atnet",), "vgnet": ("vgnet",), "all": ("atnet", "vgnet")}[stage]
    last = trainer.fit(stages, budget_s=budget_min * 60 if budget_min else None)
    metrics = {**last, "basis_explained_variance": trainer.explained_variance()}
    if trainer.steps["atnet"]:
        metrics.update(trainer.at_eval())
    if trainer.steps["vgnet"]:
        metrics.update(trainer.vg_eval())
    metrics = write_metrics(out, metrics, resume)
    click.echo(f"steps {trainer.steps} metrics: {metrics}")
    if export:
        exp = Path(export)
        basis = exp.with_name(exp.stem + "-basis.npz")
        exp.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(trainer.basis_path, basis)
        card = export_weights(
            exp, trainer.export_state_dict(), command=command, commands=trainer.commands,
            data={"dataset": dataset, "split": split, "clips": len(trainer.train)}, seed=seed, metrics=metrics,
            steps=trainer.steps["atnet"] + trainer.steps["vgnet"],
            config={"at_width": at_width, "vg_width": vg_width, "n_blocks": cfg.n_blocks, "basis": basis.name,
                    "exaggerate": True, "at_steps_done": trainer.steps["atnet"], "vg_steps_done": trainer.steps["vgnet"],
                    **{k: v for k, v in cfg.__dict__.items() if k not in ("at_width", "vg_width", "n_blocks")}},
            note="ATVGnet trained on the synthetic corpus with talkbench's reimplementation of the released recipes; "
                 "landmark basis fitted on the same clips (kind 'motion': identity normalised away, example landmark constant)",
            deviations=[f"VG-net steps {t['steps'][0]}..{t['steps'][1]}: generator loss + {t['weight']} x L1 on the "
                        "template's mouth box (points 48..67 grown 25%); the official loss alone left VG-net copying "
                        "the example image" for t in trainer.mouth_terms],
            conv_gru="official quirk kept: Conv2dGRU(batch_first=False) fed (B, T, ...) recurs over the batch axis; "
                     "at inference (batch 1) every frame is one step from a zero state")
        click.echo(f"exported {export} + {basis.name} (sha256 {card['sha256'][:16]}...)")
