"""``talkbench run`` (placeholder until its issue lands)."""

import click


@click.command(name="run", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
def run() -> None:
    """Not implemented yet."""
    raise click.ClickException("'talkbench run' is not implemented yet")
