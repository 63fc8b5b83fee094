"""elad: active distillation of LLM reasoning into small student models."""

__version__ = "0.1.0"
