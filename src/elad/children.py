"""What a process that elad starts for one piece of work (a round's training, a grid's cell) shares with the
others: it ends when the process that started it has gone, and its parent names how it ended."""

import os
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
