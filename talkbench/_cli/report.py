"""``talkbench report`` (placeholder until its issue lands)."""

import click


@click.command(name="report", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
def report() -> None:
    """Not implemented yet."""
    raise click.ClickException("'talkbench report' is not implemented yet")
