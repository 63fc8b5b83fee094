"""At the edge, beside the CLI: what leaves a run directory (a round's student as a model folder, the
annotations it bought as a dataset), and their upload to the Hugging Face Hub."""

from elad.export.data import export_data
from elad.export.folders import push_to_hub
from elad.export.model import best_round, export_round

__all__ = ["best_round", "export_data", "export_round", "push_to_hub"]
