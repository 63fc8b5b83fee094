"""How a grid waits for a cell's (or shard's) process when it is interrupted itself."""

import subprocess
import sys

import pytest

from elad.children import ending, wait_for


class InterruptedOnce(subprocess.Popen):
    """A child whose first wait is cut short by Ctrl-C, as the grid's is."""

    def wait(self, timeout=None):
        if not getattr(self, "interrupted", False):
            self.interrupted = True
            raise KeyboardInterrupt
        return super().wait(timeout)


def _child(code: str) -> InterruptedOnce:
    return InterruptedOnce([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)


def test_an_interrupted_wait_gives_the_child_time_to_wind_up_and_passes_the_interrupt_on():
    child = _child("import time; time.sleep(1)")  # winds up on its own within the grace
    with pytest.raises(KeyboardInterrupt):
        wait_for(child, grace=(20, 1))
    assert child.returncode == 0  # ended by itself, not terminated


def test_a_child_that_does_not_end_is_terminated_and_then_killed():
    lingering = _child("import time; time.sleep(60)")
    with pytest.raises(KeyboardInterrupt):
        wait_for(lingering, grace=(0.5, 5))
    assert lingering.returncode == -15
    deaf = _child("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(flush=True); "
                  "time.sleep(60)")
    deaf.stdout.readline()  # its handler is set
    with pytest.raises(KeyboardInterrupt):
        wait_for(deaf, grace=(0.5, 0.5))
    assert deaf.returncode == -9 and "ran out of memory" in ending(deaf.returncode)


def test_an_uninterrupted_wait_is_the_exit_status():
    assert wait_for(subprocess.Popen([sys.executable, "-c", "raise SystemExit(4)"])) == 4
