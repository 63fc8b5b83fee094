"""What a process that elad starts for one piece of work (a round's training, a grid's cell or shard) shares
with the others: it ends when the process that started it has gone, its parent names how it ended, and
its parent gives it time to finish what an interrupt asks of it.

`python -m elad.children PARENT ARGS...` is the command `elad ARGS...` (the same checks, output and exit
statuses) in a process that ends when the process PARENT has gone: how a grid runs its cells and shards.
"""

import os
import subprocess
import sys
import threading
import time


def stop_without(parent: int, every: float = 1.0) -> None:
    """End this process when the one that launched it has gone (killed, say): nobody would read the result,
    and a rerun would find the work's run directory still held. Launched directly, the parent is this
    process's own (which changes the moment it dies, reaped or not); under accelerate launch it is the
    launcher's."""
    direct = os.getppid() == parent

    def gone() -> bool:
        if direct:
            return os.getppid() != parent
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # a process we may not signal: alive
            pass
        return False

    def watch():
        while not gone():
            time.sleep(every)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def ending(returncode: int) -> str:
    """How a child process ended, in words: a SIGKILL is, on a machine short of memory, the kernel's doing."""
    if returncode == -9:
        return "killed by signal 9, which is how the system ends a process that ran out of memory"
    if returncode < 0:
        return f"killed by signal {-returncode}"
    return f"exit status {returncode}"


def elad_command(*args: str) -> list[str]:
    """`elad ARGS...` as a child of this process that ends when this process has gone."""
    return [sys.executable, "-m", "elad.children", str(os.getpid()), *args]


def wait_for(child: subprocess.Popen, grace: tuple[float, float] = (30, 10)) -> int:
    """The child's exit status. Interrupted here (Ctrl-C reaches the child too), it gets grace[0] seconds to
    wind up (save, say how to resume), then is terminated and gets grace[1], then is killed: it never goes
    on without us."""
    try:
        return child.wait()
    except BaseException:
        for end, seconds in ((None, grace[0]), (child.terminate, grace[1]), (child.kill, None)):
            if end is not None:
                end()
            try:
                child.wait(timeout=seconds)
                break
            except subprocess.TimeoutExpired:
                continue
        raise


def main(argv: list[str]) -> None:
    parent, *args = argv
    stop_without(int(parent))
    from elad.cli import app

    app(args, prog_name="elad")


if __name__ == "__main__":
    main(sys.argv[1:])
