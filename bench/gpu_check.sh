#!/usr/bin/env bash
# Two rounds of the loop on an NVIDIA GPU with a tiny random model (bf16): every stage, and its time.
# Needs torch (its CUDA build), transformers, peft and accelerate already installed; elad is installed
# beside them without touching them (--no-deps). Runs in well under 5 minutes; `--cpu` checks it on a CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
python -c "import elad" 2>/dev/null || pip install -q --no-deps -e .
python - <<'PY'
import importlib.util, sys
missing = [m for m in ("pydantic", "yaml", "typer", "rich", "matplotlib", "numpy", "openai", "gguf", "tokenizers")
           if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"gpu_check: install these first (pip install {' '.join(missing)}): elad imports them")
PY
exec python bench/gpu_check.py "$@"
