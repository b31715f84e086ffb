"""``talkbench study {create,serve,report}``: the MOS user study (paper Table 2)."""

from __future__ import annotations

import click


def _csv(value: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in value.split(",") if x.strip())


@click.group(name="study")
def study() -> None:
    """The user study of the paper's Table 2: mean opinion scores from people, in a browser."""


@study.command(name="create")
@click.option("--runs", required=True, help="Finished run directories, comma-separated (one per dataset, say).")
@click.option("--methods", required=True, help="Methods to compare, comma-separated (e.g. gt,cals,wav2lip).")
@click.option("--per-dataset", type=int, default=7, show_default=True, help="Samples per dataset.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="The study folder (new or empty).")
@click.option("--participants", type=int, default=15, show_default=True,
              help="Planned participants (orders are balanced in blocks of the Latin square's size).")
@click.option("--attention-checks", type=int, default=2, show_default=True,
              help="Instructed-response videos per participant.")
@click.option("--max-attention-failures", type=int, default=0, show_default=True,
              help="Failed checks a participant may have and still be counted.")
@click.option("--require-watch/--no-require-watch", default=True, show_default=True,
              help="Enable rating only after the video has played to the end.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--title", default="Talking-face video study", show_default=True, help="Shown to participants.")
def create(runs: str, methods: str, per_dataset: int, out: str, participants: int, attention_checks: int,
           max_attention_failures: int, require_watch: bool, seed: int, title: str) -> None:
    """Pick the same samples for every method from finished runs and write the study."""
    from talkbench.study.create import StudyConfig, create_study, study_summary
    from talkbench.training import command_line

    config = StudyConfig(runs=_csv(runs), methods=_csv(methods), per_dataset=per_dataset, participants=participants,
                         attention_checks=attention_checks, max_attention_failures=max_attention_failures,
                         require_watch=require_watch, seed=seed, title=title)
    path = create_study(config, out, command=command_line())
    click.echo(f"{path}: {study_summary(path)}")
    click.echo(f"admin token in {path.parent / 'admin-token'}; next: talkbench study serve {out}")


@study.command(name="serve")
@click.argument("study_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to bind; anything but localhost needs a TLS reverse proxy in front (docs/study.md).")
@click.option("--port", type=int, default=8765, show_default=True)
@click.option("--proxy", is_flag=True, help="Behind one reverse proxy: trust its X-Forwarded-For/-Proto/-Host.")
@click.option("--threads", type=int, default=8, show_default=True)
def serve(study_dir: str, host: str, port: int, proxy: bool, threads: int) -> None:
    """Serve the participant page and the admin page until interrupted."""
    from talkbench.study.server import admin_token, is_loopback, make_app
    from talkbench.study.server import serve as serve_app

    app = make_app(study_dir, proxy=proxy)  # checks the study and its videos before binding
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"participants: http://{shown}:{port}/")
    click.echo(f"admin:        http://{shown}:{port}/admin?token={admin_token(study_dir)}")
    if not is_loopback(host):
        click.echo("warning: listening beyond this machine; put an HTTPS reverse proxy in front and use --proxy "
                   "(docs/study.md)", err=True)
    serve_app(app, host=host, port=port, threads=threads)


@study.command(name="report")
@click.argument("study_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Default: STUDY/report.")
@click.option("--complete-only", is_flag=True, help="Count only participants who rated every video.")
def report(study_dir: str, out: str | None, complete_only: bool) -> None:
    """Table 2 (MOS ± 95% CI), per-dataset tables, Krippendorff's alpha, exclusions: HTML/MD/LaTeX/CSV."""
    from talkbench.study.report import build_study_report

    page = build_study_report(study_dir, out, complete_only=complete_only)
    click.echo(page)
    click.echo((page.parent / "table.md").read_text(encoding="utf-8"))
