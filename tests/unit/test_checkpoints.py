"""Which checkpoints a training resumes from: its own, and only complete ones that read back."""

import logging

import pytest
import torch
from safetensors.torch import save_file

from elad.students import checkpoints
from elad.students.common import TrainRecord


def _checkpoint(folder, step, complete=True):
    path = folder / f"checkpoint-{step}"
    path.mkdir(parents=True)
    if complete:
        (path / checkpoints.COMPLETE).write_text("{}")
    return path


def test_the_newest_complete_checkpoint_is_resumed_and_a_half_written_one_removed(tmp_path):
    _checkpoint(tmp_path, 4)
    newest = _checkpoint(tmp_path, 12)
    half_written = _checkpoint(tmp_path, 16, complete=False)
    (tmp_path / "checkpoint-notes").mkdir()  # not a step: left alone
    checkpoints.prune(tmp_path)
    assert checkpoints.last_complete(tmp_path) == newest  # by step number: 12 beats 4 although "4" > "12" as text
    assert not half_written.exists() and (tmp_path / "checkpoint-notes").exists()


def test_looking_up_the_checkpoint_to_resume_from_deletes_nothing(tmp_path):
    """Each of several training processes looks it up; only `prune`, run once before them, deletes."""
    newest = _checkpoint(tmp_path, 12)
    half_written = _checkpoint(tmp_path, 16, complete=False)
    assert checkpoints.last_complete(tmp_path) == newest
    assert half_written.exists()


def _written(folder, step):
    """A checkpoint with the kinds of files the Trainer writes: torch archives, safetensors, JSON."""
    path = _checkpoint(folder, step)
    torch.save({"state": {0: {"exp_avg": torch.ones(4096)}}}, path / "optimizer.pt")  # the data is most of it
    save_file({"lora_A": torch.ones(8, 8)}, str(path / "adapter_model.safetensors"))
    return path


def _damaged(data: bytes, how: str) -> bytes:
    if how == "cut":
        return data[: len(data) // 2]
    if how == "zero":
        return bytes(len(data))
    middle = len(data) // 2  # "flip": one byte of the data, the archive's index intact
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:]


@pytest.mark.parametrize("damage", ["cut optimizer.pt", "zero optimizer.pt", "flip optimizer.pt",
                                    "cut adapter_model.safetensors", "zero adapter_model.safetensors",
                                    "cut trainer_state.json"])
def test_a_complete_checkpoint_that_does_not_read_back_is_removed_and_an_older_one_resumed(tmp_path, damage, caplog):
    older = _written(tmp_path, 4)
    newest = _written(tmp_path, 8)
    (newest / checkpoints.COMPLETE).write_text('{"global_step": 8}')
    checkpoints.prune(tmp_path)
    assert checkpoints.last_complete(tmp_path) == newest  # intact: resumed from

    how, name = damage.split()
    (newest / name).write_bytes(_damaged((newest / name).read_bytes(), how))
    with caplog.at_level(logging.WARNING, logger="elad"):
        checkpoints.prune(tmp_path)
    assert checkpoints.last_complete(tmp_path) == older
    assert not newest.exists()
    assert f"checkpoint-8 does not read back ({name}" in caplog.text
    if how == "flip":
        assert "a checksum fails" in caplog.text


def test_a_checkpoint_that_cannot_be_read_for_another_reason_is_kept(tmp_path, monkeypatch):
    newest = _written(tmp_path, 8)
    monkeypatch.setattr(checkpoints.zipfile, "ZipFile", lambda path: (_ for _ in ()).throw(MemoryError()))
    with pytest.raises(MemoryError):
        checkpoints.prune(tmp_path)
    assert newest.exists()


def test_a_folder_without_checkpoints_resumes_nothing(tmp_path):
    assert checkpoints.last_complete(tmp_path) is None
    assert checkpoints.last_complete(tmp_path / "missing") is None


def test_claiming_a_folder_for_another_training_deletes_the_checkpoints_and_keeps_the_logs(tmp_path):
    records = [TrainRecord(prompt="p", target="t")]
    key = checkpoints.training_key({"model": "m"}, records, {"epochs": 2}, seed=1, warm_start=False)
    checkpoints.claim(tmp_path, key)
    kept = _checkpoint(tmp_path, 3)
    (tmp_path / "events.log").write_text("tracker")
    checkpoints.claim(tmp_path, key)
    assert kept.exists()
    other = checkpoints.training_key({"model": "m"}, records, {"epochs": 2}, seed=2, warm_start=False)
    checkpoints.claim(tmp_path, other)
    assert not kept.exists() and (tmp_path / "events.log").exists()


def test_the_key_follows_what_the_steps_compute_and_not_where_they_are_logged():
    records = [TrainRecord(prompt="p", target="t")]
    key = checkpoints.training_key({"model": "m"}, records, {"epochs": 2, "report_to": []}, seed=1, warm_start=False)
    same = checkpoints.training_key({"model": "m"}, records, {"epochs": 2, "report_to": ["tensorboard"]}, seed=1,
                                    warm_start=False)
    assert key == same
    changed = [
        checkpoints.training_key({"model": "n"}, records, {"epochs": 2}, seed=1, warm_start=False),
        checkpoints.training_key({"model": "m"}, [TrainRecord(prompt="p", target="u")], {"epochs": 2}, seed=1,
                                 warm_start=False),
        checkpoints.training_key({"model": "m"}, records, {"epochs": 3}, seed=1, warm_start=False),
        checkpoints.training_key({"model": "m"}, records, {"epochs": 2}, seed=2, warm_start=False),
        checkpoints.training_key({"model": "m"}, records, {"epochs": 2}, seed=1, warm_start=True),
    ]
    assert key not in changed and len(set(changed)) == len(changed)
