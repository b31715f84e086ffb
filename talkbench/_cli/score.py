"""``talkbench score`` (placeholder until its issue lands)."""

import click


@click.command(name="score", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
def score() -> None:
    """Not implemented yet."""
    raise click.ClickException("'talkbench score' is not implemented yet")
