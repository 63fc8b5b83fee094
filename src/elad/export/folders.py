"""What every export shares: a run to read from, a fresh folder to write, written aside and renamed."""

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from elad.errors import EladError
from elad.store import RunDir


def source_and_target(run_dir: str | Path, out_dir: str | Path) -> tuple[RunDir, Path]:
    """The run (config.yaml and run.db must be there) and the output folder (new or empty)."""
    run, out_dir = RunDir(run_dir), Path(out_dir)
    if not run.config_path.exists() or not run.has_run():
        raise EladError(f"{run.path}: no run here (config.yaml and run.db expected)")
    if out_dir.exists() and not out_dir.is_dir():
        raise EladError(f"{out_dir}: is a file; choose a new directory")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise EladError(f"{out_dir}: exists and is not empty; choose a new directory")
    return run, out_dir


@contextmanager
def staged(out_dir: Path) -> Iterator[Path]:
    """A scratch folder beside `out_dir`, renamed to it when the block ends without error: an export cut
    short leaves no half-written folder under the name asked for."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}-"))
    try:
        yield staging
        staging.chmod(0o777 & ~_umask())  # mkdtemp's folder is the owner's alone; an export is a folder like any
        if out_dir.exists():
            out_dir.rmdir()
        staging.rename(out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def push_to_hub(folder: Path, repo_id: str, repo_type: str, private: bool = True) -> str:
    """Upload an exported folder to a Hub repository (`repo_type` model or dataset; created, private, if
    missing). The token comes from the environment (HF_TOKEN) or `hf auth login`, never from elad.
    Returns the repository's URL."""
    from huggingface_hub import HfApi

    api = HfApi()
    try:
        url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type=repo_type)
        api.upload_folder(repo_id=repo_id, folder_path=str(folder), repo_type=repo_type, commit_message="elad export")
    except Exception as error:  # noqa: BLE001 - network, auth and validation errors all stop the same way
        raise EladError(f"--push-to-hub {repo_id}: {error}") from None
    return str(url)
