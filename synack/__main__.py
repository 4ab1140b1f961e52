"""``python -m synack`` runs the command line."""

from .cli import main

main()
