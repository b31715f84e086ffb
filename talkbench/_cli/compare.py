"""``talkbench compare`` (placeholder until its issue lands)."""

import click


@click.command(name="compare", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
def compare() -> None:
    """Not implemented yet."""
    raise click.ClickException("'talkbench compare' is not implemented yet")
