"""The model registry: weights as safetensors with a model card, sha256-verified on load.

A registered model ``NAME`` is three files in ``models/weights/`` (or any folder):

* ``NAME.safetensors`` — the weights (optionally stored as fp16, cast back to fp32 on load);
* ``NAME.json`` — the model card: configuration, classes, training data and seeds, training
  command, held-out metrics, software versions, sha256 / size / parameter count of the file;
* ``NAME.md`` — the same card for people.

:func:`load_model` refuses a missing, corrupt, altered (sha256) or mismatched (architecture)
file with a :class:`~models.errors.WeightsError` that names the file and the fix.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from models.config import ModelConfig
from models.errors import ModelConfigError, WeightsError

__all__ = ["WEIGHTS_DIR", "LoadedModel", "save_model", "load_model", "resolve_weights",
           "sha256_file", "software_versions", "render_card_markdown", "list_models", "publish"]

#: Where shipped models live.
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
CARD_VERSION = 1
DTYPES = {"fp32": torch.float32, "fp16": torch.float16}


@dataclass(frozen=True)
class LoadedModel:
    """A network with verified weights, its configuration, card and file."""

    model: nn.Module
    config: ModelConfig
    card: dict
    path: Path


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def portable_path(path: str | Path) -> str:
    """``path`` as written into a card: relative to the working directory when inside it.

    Cards are committed with the weights, so they must not carry this machine's absolute
    paths (``/home/alice/...``); paths outside the working directory are kept as given.

    Examples
    --------
    >>> portable_path(Path.cwd() / "runs" / "starter")
    'runs/starter'
    >>> portable_path("/elsewhere/data")
    '/elsewhere/data'
    """
    p = Path(path)
    try:
        return p.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


def software_versions() -> dict[str, str]:
    """Versions of the software that matters for reproducing a model."""
    import numpy
    import safetensors
    import segmentation_models_pytorch as smp

    out = {"python": platform.python_version(), "torch": torch.__version__,
           "segmentation_models_pytorch": smp.__version__, "numpy": numpy.__version__,
           "safetensors": safetensors.__version__}
    try:
        import timm

        out["timm"] = timm.__version__
    except ImportError:  # pragma: no cover - timm comes with smp
        pass
    try:
        from importlib.metadata import version

        out["donorsite"] = version("donorsite")
    except Exception:  # pragma: no cover - source tree without install
        pass
    return out


def resolve_weights(name_or_path: str | Path,
                    weights_dir: str | Path | None = None) -> tuple[Path, Path]:
    """``(weights file, card file)`` for a registered name or a ``.safetensors`` path."""
    p = Path(name_or_path)
    if p.suffix == ".safetensors" or p.parent != Path(".") or p.is_file():
        weights = p if p.suffix == ".safetensors" else p.with_suffix(".safetensors")
    else:
        weights = Path(weights_dir or WEIGHTS_DIR) / f"{name_or_path}.safetensors"
    return weights, weights.with_suffix(".json")


def list_models(weights_dir: str | Path | None = None) -> list[str]:
    """Names of the models in ``weights_dir`` (default: the shipped ones)."""
    d = Path(weights_dir or WEIGHTS_DIR)
    return sorted(p.stem for p in d.glob("*.safetensors") if p.with_suffix(".json").is_file())


def save_model(model: nn.Module, config: ModelConfig, name_or_path: str | Path, *,
               weights_dir: str | Path | None = None, dtype: str = "fp32",
               card: dict[str, Any] | None = None) -> Path:
    """Write ``model``'s weights, JSON card and Markdown card; return the weights path.

    Parameters
    ----------
    model : nn.Module
        Built by :func:`models.factory.build_model` from ``config``.
    config : ModelConfig
    name_or_path : str or Path
        A name (written to ``weights_dir``) or a ``.safetensors`` path.
    dtype : {'fp32', 'fp16'}
        Storage precision of floating-point tensors (fp16 halves the file).
    card : dict, optional
        Further card fields: ``summary``, ``training`` (data, seeds, command, config),
        ``metrics``, ``metrics_markdown``, ``limitations``.

    Examples
    --------
    >>> import tempfile
    >>> from models.factory import build_model
    >>> cfg = ModelConfig(encoder="tu-resnet10t", encoder_depth=3,
    ...                   decoder_channels=(16, 8, 8), tile_size=64)
    >>> d = tempfile.mkdtemp()
    >>> path = save_model(build_model(cfg), cfg, "tiny", weights_dir=d)
    >>> load_model("tiny", weights_dir=d).config == cfg
    True
    """
    from safetensors.torch import save_file

    if dtype not in DTYPES:
        raise ModelConfigError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    weights, card_path = resolve_weights(name_or_path, weights_dir)
    weights.parent.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for k, v in model.state_dict().items():
        v = v.detach().cpu()
        if v.is_floating_point():
            v = v.to(DTYPES[dtype])
        tensors[k] = v.contiguous()
    save_file(tensors, str(weights), metadata={"format": "pt", "card_version": str(CARD_VERSION),
                                                "config": json.dumps(config.to_dict())})
    _write_card(weights, card_path, model, config, card, dtype)
    return weights


def _write_card(weights: Path, card_path: Path, model: nn.Module, config: ModelConfig,
                card: dict[str, Any] | None, dtype: str) -> None:
    full = {"name": weights.stem, "card_version": CARD_VERSION,
            "created_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            **(card or {}),
            "config": config.to_dict(), "classes": list(config.classes),
            "file": weights.name, "sha256": sha256_file(weights),
            "file_size_bytes": weights.stat().st_size, "storage_dtype": dtype,
            "n_parameters": int(sum(p.numel() for p in model.parameters())),
            "software": software_versions()}
    card_path.write_text(json.dumps(full, indent=2, default=_json_default) + "\n")
    weights.with_suffix(".md").write_text(render_card_markdown(full))


def load_model(name_or_path: str | Path, *,
               weights_dir: str | Path | None = None) -> LoadedModel:
    """Load verified weights into a fresh network (fp32, eval mode, on the CPU).

    Raises
    ------
    WeightsError
        The weights or card file is missing or unreadable, the file's sha256 differs from the
        card's, the file is not valid safetensors, or its tensors do not fit the network the
        card's configuration builds.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from models.factory import build_model

    weights, card_path = resolve_weights(name_or_path, weights_dir)
    if not weights.is_file():
        avail = list_models(weights.parent) if weights.parent.is_dir() else []
        raise WeightsError(f"weights file not found: {weights} (model {str(name_or_path)!r}); "
                           f"models there: {avail}; train one with `donorsite train` or "
                           f"`make train`")
    if not card_path.is_file():
        raise WeightsError(f"model card not found: {card_path} (it holds the configuration and "
                           f"sha256 that {weights.name} is checked against)")
    try:
        card = json.loads(card_path.read_text())
        expected = str(card["sha256"]).lower()
        config = ModelConfig.from_dict(card["config"], source=str(card_path))
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ModelConfigError) as exc:
        raise WeightsError(f"model card {card_path} is unreadable or incomplete: "
                           f"{type(exc).__name__}: {exc}") from None
    actual = sha256_file(weights)
    if actual != expected:
        raise WeightsError(f"sha256 mismatch for {weights}: file has {actual}, card "
                           f"{card_path.name} says {expected}; the weights were altered, "
                           f"truncated or belong to another card — restore the file or retrain")
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise WeightsError(f"weights file {weights} is corrupt (not valid safetensors): "
                           f"{exc}") from None
    model = build_model(config)
    _check_fits(model, tensors, weights, config)
    state = {k: v.to(model.state_dict()[k].dtype) for k, v in tensors.items()}
    model.load_state_dict(state, strict=True)
    return LoadedModel(model.eval(), config, card, weights)


def publish(source: str | Path, name: str, *, weights_dir: str | Path | None = None,
            dtype: str = "fp16", card_updates: dict[str, Any] | None = None) -> Path:
    """Copy a verified model (e.g. a run's ``best.safetensors``) into the registry as ``name``.

    The card is carried over, updated with ``card_updates`` (top-level keys replace,
    ``training``/``metrics`` are merged). A source already stored in ``dtype`` is copied byte
    for byte, so a file that was evaluated and then published keeps its sha256 (safetensors
    does not promise the same bytes when the same tensors are written again); otherwise the
    weights are re-written in ``dtype``.
    """
    import os
    import shutil

    if dtype not in DTYPES:
        raise ModelConfigError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    src = load_model(source)
    card = {k: v for k, v in src.card.items()
            if k not in ("name", "file", "sha256", "file_size_bytes", "storage_dtype",
                         "n_parameters", "software", "config", "classes", "created_utc")}
    for k, v in (card_updates or {}).items():
        if k in ("training", "metrics") and isinstance(v, dict):
            card[k] = {**card.get(k, {}), **v}
        else:
            card[k] = v
    # the first checkpoint this model came from is kept through further publishing
    card.setdefault("training", {}).setdefault("source_checkpoint", portable_path(src.path))
    if src.card.get("storage_dtype") != dtype:
        return save_model(src.model, src.config, name, weights_dir=weights_dir, dtype=dtype,
                          card=card)
    weights, card_path = resolve_weights(name, weights_dir)
    weights.parent.mkdir(parents=True, exist_ok=True)
    if weights.resolve() != src.path.resolve():
        tmp = weights.with_name(f".{weights.name}.tmp")
        shutil.copyfile(src.path, tmp)
        os.replace(tmp, weights)
    _write_card(weights, card_path, src.model, src.config, card, dtype)
    return weights


def _check_fits(model: nn.Module, tensors: dict[str, torch.Tensor], path: Path,
                config: ModelConfig) -> None:
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    have = {k: tuple(v.shape) for k, v in tensors.items()}
    problems = [f"missing {k}" for k in sorted(set(want) - set(have))]
    problems += [f"unexpected {k}" for k in sorted(set(have) - set(want))]
    problems += [f"{k}: file {have[k]} vs model {want[k]}" for k in sorted(set(want) & set(have))
                 if want[k] != have[k]]
    if problems:
        raise WeightsError(
            f"weights file {path} does not fit the architecture in its card "
            f"({config.architecture}/{config.encoder}, {config.n_classes} classes): "
            f"{len(problems)} problem(s), e.g. {'; '.join(problems[:3])}")


def _json_default(o: Any) -> Any:
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "tolist"):
        return o.tolist()
    if hasattr(o, "to_dict"):
        return o.to_dict()
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def render_card_markdown(card: dict[str, Any]) -> str:
    """The model card as Markdown (what ``NAME.md`` holds)."""
    cfg = card.get("config", {})
    lines = [f"# Model card: {card.get('name', '?')}", ""]
    if card.get("summary"):
        lines += [str(card["summary"]), ""]
    lines += ["## Architecture", "", "| field | value |", "|---|---|"]
    lines += [f"| {k} | `{json.dumps(v)}` |" for k, v in cfg.items()]
    lines += ["", "Classes (label value = index): "
              + ", ".join(f"{i} = {c}" for i, c in enumerate(card.get("classes", []))), ""]
    tr = card.get("training")
    if tr:
        lines += ["## Training", ""]
        for k, v in tr.items():
            text = json.dumps(v, default=_json_default) if not isinstance(v, str) else v
            lines.append(f"- **{k}**: {text}")
        lines.append("")
    if card.get("metrics_markdown"):
        lines += ["## Held-out metrics", "", str(card["metrics_markdown"]).rstrip(), ""]
    elif card.get("metrics"):
        lines += ["## Held-out metrics", "", "```json",
                  json.dumps(card["metrics"], indent=2, default=_json_default), "```", ""]
    if card.get("limitations"):
        lines += ["## Limitations", ""] + [f"- {x}" for x in card["limitations"]] + [""]
    lines += ["## File", "",
              f"- file: `{card.get('file')}` ({card.get('file_size_bytes', 0) / 1e6:.2f} MB, "
              f"stored as {card.get('storage_dtype')})",
              f"- sha256: `{card.get('sha256')}`",
              f"- parameters: {card.get('n_parameters', 0):,}",
              f"- created: {card.get('created_utc')}", "",
              "## Software", ""]
    lines += [f"- {k} {v}" for k, v in card.get("software", {}).items()]
    return "\n".join(lines) + "\n"
