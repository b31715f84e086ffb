"""``talkbench train cals``."""

from __future__ import annotations

import click


@click.command(name="cals")
@click.option("--dataset", default=None, help="Override the config's dataset.")
@click.option("--root", type=click.Path(file_okay=False), default=None)
@click.option("--config", "config_path", default="synth", show_default=True,
              help="YAML file, or a preset name in cals/configs (synth, lrs2, lrw, hdtf).")
@click.option("--stage", "stages", multiple=True, type=click.Choice(["sync", "a2l", "e2e"]),
              help="Stages to run (default: all three in order).")
@click.option("--out", type=click.Path(file_okay=False), default="runs/train-cals", show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--resume", is_flag=True)
@click.option("--export", type=click.Path(dir_okay=False), default=None, help="Write fp16 safetensors + card.")
@click.option("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice).")
def train_cals(dataset: str | None, root: str | None, config_path: str, stages: tuple[str, ...], out: str,
               device: str, resume: bool, export: str | None, threads: int | None) -> None:
    """Train CALS (sync module, masked Audio-to-Lip, end to end) on any dataset the suite reads."""
    from cals.config import load_config, with_overrides
    from cals.data import ClipBank
    from cals.train import STAGES, Trainer, heldout_l1
    from talkbench.runner import resolve_device
    from talkbench.training import command_history, command_line, export_weights, set_threads, write_metrics

    set_threads(threads)

    cfg = load_config(config_path)
    over = {k: v for k, v in {"dataset": dataset, "root": root}.items() if v is not None}
    if over:
        cfg = with_overrides(cfg, train=over)
    dev = resolve_device(device)
    bank = ClipBank.from_dataset(cfg.train, cfg.model.img_size)
    trainer = Trainer(cfg, out, dev, bank)
    if resume and trainer.resume():
        click.echo(f"resumed at {trainer.step}")
    command = command_line()
    commands = command_history(out, command, resume, write=trainer.rank == 0)
    last = trainer.fit(tuple(stages) or STAGES)
    val = ClipBank.from_dataset(cfg.train, cfg.model.img_size, split="val", limit=20)
    # A resumed run with no steps left (e.g. only --export) keeps the training losses of the run before.
    ran = any(k != "seconds" for k in last)
    metrics = write_metrics(out, {"heldout_l1": heldout_l1(trainer, val),
                                  **({k: round(v, 4) for k, v in last.items()} if ran else {})}, resume)
    click.echo(f"metrics: {metrics}")
    if export:
        card = export_weights(
            export, trainer.model.state_dict(), command=command, commands=commands,
            data={"dataset": cfg.train.dataset, "split": cfg.train.split, "clips": len(bank.clips)},
            seed=cfg.train.seed, metrics=metrics, steps=trainer.step, config=cfg.to_dict(),
            context=(f"Audio-to-Lip trained on whole utterances of up to {cfg.train.window} frames (longer clips cut "
                     "to that many frames at random starts, positions absolute), padded batches with padding "
                     "masks; the reference frame is never within t_s // 2 frames of a loss-carrying frame"))
        click.echo(f"exported {export} (sha256 {card['sha256'][:16]}...)")
