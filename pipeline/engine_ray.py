"""The stages on a Ray cluster, as a Ray Data pipeline (``donorsite process --engine ray``).

Same contract as the local :class:`pipeline.engine.Engine`: :meth:`RayEngine.run` yields one
outcome per task as photos finish, and :func:`pipeline.process.process_study` stores each one
exactly as it stores the local engine's. The stages are the local engine's own functions; only
the place where they run changes:

1. **prepare** — CPU tasks (``map_batches``): each reads its photo's bytes from the path the
   driver registered (so every node must see the study at the same path), decodes,
   calibrates and builds the working and review images
   (:func:`pipeline.engine_prepare.prepare_photo`, the local engine's prepare);
2. **network** — a pool of actors (:class:`ray.data.ActorPoolStrategy`), one GPU each when
   the cluster has GPUs, CPU actors otherwise. Each actor loads the model once with the local
   engine's builder (:func:`pipeline.engine_setup.build_segmenter`) and the *same* back-end
   the local engine picks on the driver's machine (torch or onnxruntime, timed and cached
   there), so both engines give the same masks; one photo per network call, as locally;
3. **measure and encode** — CPU tasks: areas through the calibration
   (:func:`pipeline.stages.segment_and_measure`), mask PNG, overlay and review JPEG encoded
   by :func:`pipeline.engine.measure_and_encode` (the local engine's last stage) and shipped
   as bytes.

Results stream back to the driver (``iter_rows``), which alone writes the files (atomically,
:func:`pipeline.stages.atomic_write_bytes`) and the study store, so transactions, idempotence
and provenance are those of the local engine. Only encoded bytes and the small result records
travel back, never the float images. A photo that Ray runs twice (a task retried after a node
died) is yielded once. Errors per photo are failed outcomes, as locally.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config import Settings
from pipeline.engine import EngineOptions, Outcome
from pipeline.errors import PipelineError
from pipeline.stages import Prepared, PrepareOptions, Task

__all__ = ["RayEngine", "RayOptions", "RayOutcome", "RayUnavailableError", "require_ray",
           "INSTALL_HINT"]

#: How to get the optional dependency.
INSTALL_HINT = "pip install 'donorsite[ray]'"

class RayUnavailableError(PipelineError):
    """Ray Data is not installed, or the cluster cannot run the network (the message says)."""

    code = "ray_unavailable"


def require_ray() -> Any:
    """The ``ray`` module with Ray Data, or :class:`RayUnavailableError` naming the extra."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise RayUnavailableError(f"--engine ray needs Ray Data, which is not installed "
                                  f"({exc}); install it with: {INSTALL_HINT}") from exc
    return ray


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide the Ray pipeline runs.

    Parameters
    ----------
    address : str or None
        Ray cluster to join (``'auto'``, ``'ray://host:10001'``, ``'host:6379'``); ``None``:
        the Ray instance this process is already connected to, else a local one started for
        the run (and stopped after it).
    actors : int or None
        Network actors at most (the pool grows from one); ``None``: one per GPU, or one per
        four CPUs of the cluster (at least one) for CPU actors.
    actor_cpus : float
        CPUs reserved by each CPU actor.
    threads : int or None
        Threads of each CPU actor's network; ``None``: ``ceil(actor_cpus)``.
    prepare_memory_mb : int
        Memory Ray reserves for each decode-and-calibrate task (the peak of a 12-MP photo,
        with room to spare), so that a node does not take more photos than it can hold.

    Examples
    --------
    >>> RayOptions(actors=0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pipeline.engine.EngineOptionsError: RayOptions.actors: 0 must be a positive integer or None
    """

    address: str | None = None
    actors: int | None = None
    actor_cpus: float = 1.0
    threads: int | None = None
    prepare_memory_mb: int = 1024

    def __post_init__(self) -> None:
        from pipeline.engine import EngineOptionsError

        for name in ("actors", "threads", "prepare_memory_mb"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise EngineOptionsError(f"RayOptions.{name}: {v!r} must be a positive "
                                         "integer or None")
        if not isinstance(self.actor_cpus, int | float) or self.actor_cpus <= 0:
            raise EngineOptionsError(f"RayOptions.actor_cpus: {self.actor_cpus!r} must be "
                                     "a positive number")


@dataclass
class RayOutcome(Outcome):
    """An :class:`pipeline.engine.Outcome` plus the Ray node id each stage ran on
    (``{'prepare': ..., 'network': ..., 'measure': ...}``)."""

    nodes: dict[str, str] = field(default_factory=dict)


# ------------------------------------------------------------------------ the stages
def _node_id() -> str:
    import ray

    return ray.get_runtime_context().get_node_id()


def _table(indices: list[int], payloads: list[bytes]) -> Any:
    import pyarrow as pa

    return pa.table({"index": pa.array(indices, pa.int64()),
                     "payload": pa.array(payloads, pa.large_binary())})


def _dumps(obj: Any) -> bytes:
    return pickle.dumps(obj, protocol=5)


def prepare_batch(batch: Any, *, options: PrepareOptions, reduce: str | int) -> Any:
    """Stage 1 on a pyarrow batch of task rows -> ``index, payload`` (pickled Prepared)."""
    import cv2

    from pipeline.engine_prepare import DecodePolicy, prepare_photo

    cv2.setNumThreads(1)
    policy, node = DecodePolicy(reduce=reduce), _node_id()
    out = []
    for row in batch.to_pylist():
        task = Task(row["photo_id"], row["result_version"], Path(row["path"]), row["name"],
                    row["sha256"])
        out.append(_dumps((prepare_photo(task, options, policy), {"prepare": node})))
    return _table(batch.column("index").to_pylist(), out)


class NetworkActor:
    """Stage 2: the model, loaded once per actor, labels at full resolution per photo."""

    def __init__(self, model: str, *, device: str, options: dict[str, Any]) -> None:
        import cv2
        import torch

        from models.registry import load_model
        from pipeline.assessment import make_assessor
        from pipeline.engine_setup import build_segmenter

        loaded = load_model(model)
        self.assessor = make_assessor(loaded.card, loaded.config)
        opts = dict(options)
        cache = opts.get("cache_dir")
        if cache is None or not _writable(Path(cache)):  # not shared with this node
            opts["cache_dir"] = Path(tempfile.gettempdir()) / "donorsite-ray-cache"
        # jobs=0: no busy processes beside a timing (there is one candidate back-end)
        self.seg, self.choice, self.device, threads = build_segmenter(
            loaded.model, loaded.config, loaded.card, device=device,
            options=EngineOptions(**opts), jobs=0)
        # as Engine.cpu_threads: torch's threads only when it runs the network on the CPU
        torch_cpu = self.device.type == "cpu" and self.choice.backend == "torch"
        torch.set_num_threads(threads if torch_cpu else 1)
        cv2.setNumThreads(1)
        self.node = _node_id()

    def __call__(self, batch: Any) -> Any:
        from pipeline.assessment import assess_prepared

        out = []
        for payload in batch.column("payload").to_pylist():
            p, nodes = pickle.loads(payload)
            labels = assessment = None
            if p.ok:
                proba = self.seg.proba([p.working])[0]  # one photo per call, as locally
                assessment = assess_prepared(self.assessor, p, proba)
                labels = self.seg.labels(proba, p.full_shape).result()
                # the driver only needs the working image's shape (stored as provenance)
                p.working = np.empty((*p.working.shape[:2], 0), np.float32)
            out.append(_dumps((p, labels, assessment, {**nodes, "network": self.node})))
        return _table(batch.column("index").to_pylist(), out)


def measure_batch(batch: Any) -> Any:
    """Stage 3: measure, encode the files; payload = pickled ``(RayOutcome, {path: bytes})``."""
    import cv2

    from pipeline.engine import measure_and_encode

    cv2.setNumThreads(1)
    node, out = _node_id(), []
    for payload in batch.column("payload").to_pylist():
        p, labels, assessment, nodes = pickle.loads(payload)
        nodes = {**nodes, "measure": node}
        files: dict[str, bytes] = {}
        if not p.ok:
            outcome = RayOutcome(p, nodes=nodes)
        else:
            outcome, files = measure_and_encode(p, labels, outcome_type=RayOutcome,
                                                assessment=assessment, nodes=nodes)
            p.review = None  # encoded above; not shipped back
        out.append(_dumps((outcome, files)))
    return _table(batch.column("index").to_pylist(), out)


def _writable(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(path, os.W_OK)


# ------------------------------------------------------------------------ the engine
class RayEngine:
    """Runs the stages as a Ray Data pipeline. Build with :meth:`create`.

    The driver (this process) loads the model for its name, sha256 and configuration, and —
    for CPU actors — lets the local engine's builder pick the network back-end on this
    machine (timed once and cached beside the local engine's pick); the actors use that
    back-end. The Ray connection is made here and, if this engine started a local Ray
    instance, closed when :meth:`run` ends (or on :meth:`close`).
    """

    def __init__(self, *, settings: Settings, config: Any, card: dict, model_name: str,
                 device: str, engine_options: EngineOptions, options: RayOptions,
                 choice: Any, started_ray: bool) -> None:
        self.settings = settings
        self.config = config
        self.card = dict(card)
        self.model_name = model_name
        self.device = device
        self.engine_options = engine_options
        self.options = options
        self.choice = choice
        self._started_ray = started_ray
        self.actors = options.actors or 1
        self.last_wall_s = 0.0

    @classmethod
    def create(cls, settings: Settings, options: RayOptions | None = None,
               engine_options: EngineOptions | None = None) -> RayEngine:
        """Connect to Ray (see :class:`RayOptions`), load the model, decide the actors."""
        ray = require_ray()
        from models.registry import load_model

        opts = options or RayOptions()
        eopts = engine_options or EngineOptions()
        if eopts.cache_dir is None:
            eopts = EngineOptions(**{**asdict(eopts), "cache_dir": settings.out_dir / "cache"})
        started = False
        if not ray.is_initialized():
            import logging

            # address None: always a new local instance ("local"), never a stale cluster that
            # an earlier run left registered under /tmp/ray (CI saw one at a dead address)
            ray.init(address=opts.address or "local", include_dashboard=False,
                     logging_level=logging.WARNING, log_to_driver=False)
            started = opts.address is None
        gpus = int(ray.cluster_resources().get("GPU", 0))
        cpus = int(ray.cluster_resources().get("CPU", 0))
        if settings.device == "cuda" and gpus == 0:
            raise RayUnavailableError("device 'cuda': the Ray cluster has no GPU")
        device = "cuda" if gpus and settings.device != "cpu" else "cpu"
        loaded = load_model(settings.model)
        choice = None
        if device == "cpu":
            from pipeline.engine_setup import build_segmenter

            # the local engine's pick on this machine (cached under out_dir/cache)
            _, choice, _, _ = build_segmenter(loaded.model, loaded.config, loaded.card,
                                              device="cpu", options=eopts, jobs=settings.jobs)
            eopts = EngineOptions(**{**asdict(eopts), "backend": choice.backend,
                                     "threads": opts.threads or int(np.ceil(opts.actor_cpus))})
        else:
            eopts = EngineOptions(**{**asdict(eopts), "backend": "torch"})
        engine = cls(settings=settings, config=loaded.config, card=loaded.card,
                     model_name=str(loaded.card.get("name", settings.model)), device=device,
                     engine_options=eopts, options=opts, choice=choice, started_ray=started)
        engine.actors = opts.actors or (gpus if device == "cuda" else max(1, cpus // 4))
        return engine

    @property
    def model_sha256(self) -> str:
        return str(self.card.get("sha256", "unknown"))

    @property
    def model_config(self) -> Any:
        return self.config

    def params(self) -> dict[str, Any]:
        """What ran, for the provenance of every result."""
        import ray

        e = self.engine_options
        return {"engine": "ray", "ray_version": ray.__version__,
                "address": self.options.address, "device": self.device,
                "actors_max": self.actors, "actor_cpus": self.options.actor_cpus,
                "network": {"backend": e.backend, "threads": e.threads,
                            "tile_batch": e.tile_batch,
                            "choice": None if self.choice is None else self.choice.to_dict()},
                "decode": {"decoder": "pillow", "reduce": e.reduce},
                "jobs": self.settings.jobs, "model_config": self.config.to_dict()}

    def close(self) -> None:
        """Stop the local Ray instance this engine started (if any)."""
        if self._started_ray:
            import ray

            ray.shutdown()
            self._started_ray = False

    def dataset(self, tasks: Sequence[Task], options: PrepareOptions) -> Any:
        """The (lazy) Ray Data pipeline for ``tasks``: rows ``index, payload``."""
        import ray

        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        items = [{"index": i, "photo_id": t.photo_id, "result_version": t.result_version,
                  "path": str(Path(t.path).resolve()), "name": t.name, "sha256": t.sha256}
                 for i, t in enumerate(tasks)]
        ds = ray.data.from_items(items, override_num_blocks=len(items))
        # the memory reservation also keeps Ray Data from fusing these tasks into the network
        # actors (their resources differ): decode + calibrate scale with the cluster's CPUs
        ds = ds.map_batches(prepare_batch, batch_size=1, batch_format="pyarrow",
                            fn_kwargs={"options": options, "reduce": self.engine_options.reduce},
                            num_cpus=1, memory=self.options.prepare_memory_mb * 2**20)
        opts = asdict(self.engine_options)
        gpu = self.device == "cuda"
        ds = ds.map_batches(NetworkActor, batch_size=1, batch_format="pyarrow",
                            fn_constructor_args=(self.settings.model,),
                            fn_constructor_kwargs={"device": self.device, "options": opts},
                            compute=ray.data.ActorPoolStrategy(min_size=1,
                                                               max_size=self.actors),
                            num_gpus=1 if gpu else 0,
                            num_cpus=1 if gpu else self.options.actor_cpus)
        return ds.map_batches(measure_batch, batch_size=1, batch_format="pyarrow", num_cpus=1)

    def run(self, tasks: Sequence[Task], options: PrepareOptions, *, out_dir: Path,
            progress: bool = True) -> Iterator[RayOutcome]:
        """Yield one :class:`RayOutcome` per task as photos finish; the files are written
        here, atomically, before the outcome is yielded."""
        from tqdm import tqdm

        from pipeline.stages import write_files

        out_dir = Path(out_dir)
        bar = tqdm(total=len(tasks), unit="photo", disable=not progress or not tasks,
                   desc="processing (ray)")
        t0 = time.perf_counter()
        try:
            if not tasks:
                return
            seen: set[int] = set()
            for row in self.dataset(tasks, options).iter_rows():
                index = int(row["index"])
                if index in seen:  # a retried task's second answer
                    continue
                seen.add(index)
                outcome, files = pickle.loads(row["payload"])
                outcome.prepared = _restore(outcome.prepared, tasks[index])
                if files:
                    write_files(files, out_dir=out_dir)
                yield outcome
                bar.update(1)
        finally:
            bar.close()
            self.last_wall_s = time.perf_counter() - t0
            self.close()


def _restore(p: Prepared, task: Task) -> Prepared:
    """The driver's own task object on the outcome (the worker's path is its resolved copy)."""
    p.task = task
    return p
