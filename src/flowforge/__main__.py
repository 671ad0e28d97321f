"""``python -m flowforge`` runs the CLI (through the daemon when one runs: cli/launch.py)."""

from flowforge.cli.launch import main

main()
