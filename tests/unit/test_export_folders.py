"""Where an export writes: a new or empty folder, never a file, readable like any folder the user makes."""

import os
import stat

import pytest

from elad.errors import EladError
from elad.export.folders import source_and_target, staged


def _run(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("name: x\n")
    from elad.store import RunStore

    RunStore(run / "run.db").close()
    return run


def test_an_output_path_that_is_a_file_is_refused_by_name(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(EladError, match="afile: is a file; choose a new directory"):
        source_and_target(_run(tmp_path), tmp_path / "afile")


def test_an_exported_folder_has_the_users_usual_permissions(tmp_path):
    mask = os.umask(0o022)
    try:
        with staged(tmp_path / "out") as folder:
            (folder / "weights.bin").write_bytes(b"w")
    finally:
        os.umask(mask)
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o755
