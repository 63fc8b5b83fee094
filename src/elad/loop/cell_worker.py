"""One grid cell in a process of its own: `python -m elad.loop.cell_worker CONFIG RUN_DIR PARENT`.

It is `elad run CONFIG --run-dir RUN_DIR` (the same checks, output and exit statuses) in a process that ends
when the grid that started it (pid PARENT) has gone. A process that ends hands all its memory back, where a
grid that ran every cell in one process kept what each cell's trainings scattered in its heap.
"""

import sys

from elad.children import stop_without


def main(argv: list[str]) -> None:
    config, run_dir, parent = argv
    stop_without(int(parent))
    from elad.cli import app

    app(["run", config, "--run-dir", run_dir], prog_name="elad")


if __name__ == "__main__":
    main(sys.argv[1:])
