"""At the edge, beside the CLI: what leaves a run directory (a round's student as a model folder)."""

from elad.export.model import export_round

__all__ = ["export_round"]
