"""Running `elad run` in a subprocess (through tests/reliability/launch.py), killing it with SIGKILL."""

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@dataclass
class Launch:
    rc: int
    out: str
    err: str
    seconds: float


@dataclass
class Launcher:
    """Starts `elad run CONFIG -o RUN_DIR` as a child process; `kill_now()` SIGKILLs the current one (from a
    server thread, say). Keeps every launch's output, how many were killed, and when the kills at random
    moments happened (`random_kills`: a reply may have been on its way to the client then)."""

    config: Path
    run_dir: Path
    env: dict = field(default_factory=dict)
    launches: list[Launch] = field(default_factory=list)
    kills: int = 0
    random_kills: list[float] = field(default_factory=list)

    def __post_init__(self):
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()

    def kill_now(self, at_random: bool = False) -> None:
        with self._lock:
            proc = self._proc
            if proc is None or proc.poll() is not None:
                return
            if at_random:
                self.random_kills.append(time.time())
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()

    def run(self, kill_in: str | None = None, kill_after_start: float | None = None, timeout: float = 240) -> Launch:
        """One launch. `kill_in`: a launch.py spec (a kill planted inside a function); `kill_after_start`:
        SIGKILL that many seconds after the process announces the run (its first line of output)."""
        env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200", **self.env}
        env.pop("ELAD_KILL_IN", None)
        if kill_in:
            env["ELAD_KILL_IN"] = kill_in
        command = [sys.executable, "-m", "tests.reliability.launch", "run", str(self.config), "-o", str(self.run_dir)]
        started = time.time()
        with self._lock:
            self._proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          text=True)
        proc = self._proc
        err_lines: list[str] = []
        reader = threading.Thread(target=lambda: err_lines.extend(proc.stderr), daemon=True)
        reader.start()
        out_lines: list[str] = []
        timer = None
        for line in proc.stdout:
            out_lines.append(line)
            if kill_after_start is not None and timer is None and line.startswith("elad "):
                timer = threading.Timer(kill_after_start, self.kill_now, kwargs={"at_random": True})
                timer.start()
        try:
            rc = proc.wait(timeout=timeout)
        finally:
            if timer is not None:
                timer.cancel()
            if proc.poll() is None:
                proc.kill()
        reader.join(timeout=10)
        self.kills += rc == -signal.SIGKILL
        launch = Launch(rc, "".join(out_lines), "".join(err_lines), time.time() - started)
        self.launches.append(launch)
        return launch

    def run_to_completion(self, restarts: int = 4) -> Launch:
        for _ in range(restarts + 1):
            launch = self.run()
            if launch.rc != -signal.SIGKILL:
                return launch
        raise AssertionError("the run did not finish")
