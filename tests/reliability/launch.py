"""`elad` as a subprocess for the crash tests, with an optional SIGKILL planted inside one function.

    python -m tests.reliability.launch run CONFIG -o RUN_DIR

The environment variable `ELAD_KILL_IN` = "module:Qualified.name:nth:delay" wraps that function: on its
nth call (1-based, in this process) the process kills itself with SIGKILL `delay` seconds after the call
starts, or the moment the call returns if that comes first, so it always dies inside the call or just
after it, before the caller can use (or store) what it returned; a negative delay kills it as the call
is entered, before the function runs. Without the variable it is plain `elad`.
"""

import functools
import importlib
import os
import signal
import sys
import threading


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def plant(spec: str) -> None:
    module_name, qualname, nth, delay = spec.split(":")
    nth, delay = int(nth), float(delay)
    owner = importlib.import_module(module_name)
    *parents, name = qualname.split(".")
    for parent in parents:
        owner = getattr(owner, parent)
    original = getattr(owner, name)
    calls = {"n": 0}

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] != nth:
            return original(*args, **kwargs)
        if delay < 0:
            _die()
        threading.Timer(delay, _die).start()
        try:
            return original(*args, **kwargs)
        finally:
            _die()

    setattr(owner, name, wrapper)


def main() -> None:
    spec = os.environ.get("ELAD_KILL_IN")
    if spec:
        plant(spec)
    from elad.cli import app

    sys.argv[0] = "elad"
    app()


if __name__ == "__main__":
    main()
