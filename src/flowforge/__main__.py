"""``python -m flowforge`` runs the CLI."""

from flowforge.cli.main import app

app(prog_name="flowforge")
