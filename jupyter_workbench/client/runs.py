"""Runs: ``with wb.run(experiment=..., params=...) as run: run.log({...}, step=i)``.

``Run.log`` only enqueues: a background thread sends points in batches to the workbench's batch
endpoint, in order. The queue is bounded, so a training loop that logs faster than the server
takes points slows down instead of filling memory. A workbench that cannot be reached for a while
(a restarting server or proxy: no connection, 502/503/504) loses nothing: the sender keeps the
points and tries again, backing off up to ``RETRY_MAX`` seconds, for ``OUTAGE_SECONDS``; only a
longer outage makes ``log`` raise ``ConnectionFailed``. ``end()`` (or leaving the ``with`` block,
or the interpreter exiting) flushes what is queued; a server still unreachable makes
``flush``/``end`` raise ``ConnectionFailed`` after their timeout, never hang. A run still open
when the interpreter exits ends ``FINISHED``, or ``FAILED`` if an exception ended the program
(``KILLED``: Ctrl-C).

While a run is open it is the *active* run: datasets read with ``wb.datasets.get`` are recorded
as its lineage, and plain ``mlflow.log_metric(...)`` calls go to the same run (the MLflow
tracking URI, token and ``MLFLOW_RUN_ID`` point at it until it ends).
"""

from __future__ import annotations

import atexit
import contextlib
import operator
import os
import sys
import tempfile
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ..core.validation import run_key_problem
from .errors import BadRequest, ConnectionFailed, ServerError, WorkbenchError

if TYPE_CHECKING:  # pragma: no cover
    from . import Client

__all__ = ["Run", "active_run"]

BATCH_POINTS = 5000
QUEUE_POINTS = 200_000
SEND_INTERVAL = 0.2
OUTAGE_SECONDS = 300.0  # how long the sender keeps trying a workbench it cannot reach
RETRY_MAX = 10.0  # the longest wait between two tries
TRANSIENT_STATUS = (502, 503, 504)  # a proxy or server on its way back
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # the steps MLflow stores
ARTIFACTS_SCHEME = "mlflow-artifacts:"
END_STATUSES = ("FINISHED", "FAILED", "KILLED")  # how a run may end
_open_runs: weakref.WeakSet[Run] = weakref.WeakSet()
_active: list[Run] = []  # innermost last


def active_run() -> Run | None:
    """The innermost run still open in this process (``None`` when there is none)."""
    return _active[-1] if _active else None


# MLflow's own requests when ending a run whose end the workbench could not record (its
# server gone, its client closed): one try, a short timeout (its default, retries with
# backoff for minutes, would hang the run's end on a server that is gone). Its printed URL
# is left out in any case.
_MLFLOW_QUIET = {"MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}
_MLFLOW_QUICK = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}
# one override at a time: a second thread's would save the first's values as the originals
_MLFLOW_ENV_LOCK = threading.RLock()


@contextlib.contextmanager
def _mlflow_env(values: Mapping[str, str]) -> Iterator[None]:
    """Set ``values`` in the environment (MLflow reads them per request) for the ``with``
    block, then put back what was there."""
    with _MLFLOW_ENV_LOCK:
        saved = {key: os.environ.get(key) for key in values}
        os.environ.update(values)
        try:
            yield
        finally:
            _restore_env(saved)


def _restore_env(saved: Mapping[str, str | None]) -> None:
    """Put environment variables back as ``saved`` holds them (``None``: was unset)."""
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


class Run:
    """A run being logged to; ``log`` never waits on the network."""

    def __init__(
        self, client: Client, project: str, run_id: str, info: dict[str, Any] | None = None
    ) -> None:
        self.client, self.project, self.run_id = client, project, run_id
        self.info: dict[str, Any] = info or {}
        self.status = "RUNNING"
        self.datasets_read: list[tuple[str, str, int]] = []  # (project, dataset, version)
        self._points: deque[dict[str, Any]] = deque()
        self._lock = threading.Condition()
        self._sent = 0
        self._queued = 0
        self._step = 0
        self._error: WorkbenchError | None = None
        self._trouble: WorkbenchError | None = None  # why the last try failed (retrying)
        self._closed = False
        self._saved_env: dict[str, str | None] = {}
        self._saved_mlflow_uri: Any = None
        self._saved_experiment: tuple[Any, ...] = ()  # MLflow's chosen experiment, when set
        self._thread = threading.Thread(
            target=self._sender, name=f"workbench-run-{run_id[:8]}", daemon=True
        )
        self._thread.start()
        _open_runs.add(self)
        _watch_uncaught()

    def __repr__(self) -> str:
        return f"<Run {self.run_id[:8]} {self.project} {self.status}>"

    @property
    def name(self) -> str:
        return str(self.info.get("run_name") or "")

    @property
    def experiment_id(self) -> str:
        return str(self.info.get("experiment_id") or "")

    @property
    def _mlflow_api(self) -> str:
        return self.client.mlflow_url(self.project) + "/api/2.0/mlflow"

    # -- the training loop's side -------------------------------------------------------
    def log(self, metrics: dict[str, float], step: int | None = None) -> None:
        """Queue metric points (one per key) at ``step`` (default: one more than last time).
        A name that is not a string, a value that is not a number or a step that is not a
        64-bit whole number raises ``TypeError``/``ValueError`` here, and nothing is queued."""
        if self._error is not None:
            raise self._error
        if self._closed:
            raise BadRequest(f"run {self.run_id[:8]} has ended; start a new one to log")
        if not isinstance(metrics, Mapping):
            raise TypeError(
                f"log: expected a dict of metric name -> number, got {type(metrics).__name__}"
            )
        step = self._step if step is None else _whole_step(step)
        values = {_metric_key(key): _jsonable(key, value) for key, value in metrics.items()}
        self._step = step + 1
        stamp = int(time.time() * 1000)
        lock = self._lock
        with lock:
            while len(self._points) >= QUEUE_POINTS and self._error is None:
                lock.wait(0.5)  # back-pressure: the sender is behind
            for key, value in values.items():
                self._points.append({"key": key, "value": value, "step": step, "timestamp": stamp})
            self._queued += len(metrics)
            if len(self._points) >= BATCH_POINTS:
                lock.notify_all()

    def log_params(self, params: dict[str, Any]) -> None:
        body = {"params": {k: str(v) for k, v in _mapping(params, "params").items()}}
        self.client.post(f"runs/{self.run_id}/batch", body)

    def set_tags(self, tags: dict[str, Any]) -> None:
        body = {"tags": {k: str(v) for k, v in _mapping(tags, "tags").items()}}
        self.client.post(f"runs/{self.run_id}/batch", body)

    def record_lineage(self, body: dict[str, Any]) -> dict[str, Any]:
        """Record what the run used (``datasets_read``, ``code``, ``environment``, ``notes``)."""
        return dict(self.client.post(f"runs/{self.run_id}/lineage", body))

    def history(self, key: str, max_points: int = 2000) -> dict[str, Any]:
        """A metric's stored points (``steps``, ``values``; downsampled past ``max_points``)."""
        return self.client.history(self.run_id, key, max_points=max_points)

    def lineage(self) -> dict[str, Any]:
        return dict(self.client.get(f"runs/{self.run_id}/lineage"))

    def _read_dataset(self, project: str, name: str, version: int) -> None:
        """Called by ``wb.datasets.get`` while this run is active (once per version)."""
        if self._closed or (project, name, version) in self.datasets_read:
            return
        ref = {"project": project, "dataset": name, "version": f"v{version}"}
        self.record_lineage({"datasets_read": [ref]})
        self.datasets_read.append((project, name, version))

    # -- artifacts and models ----------------------------------------------------------------
    def log_artifact(self, path: str | os.PathLike[str], artifact_path: str = "") -> str:
        """Upload a file, or a folder's files, to the run's artifacts (under ``artifact_path``);
        answers the artifact's ``runs:/`` URI."""
        source = Path(path).expanduser()
        if not source.exists():
            raise FileNotFoundError(f"log_artifact: {source} does not exist")
        base = artifact_path.strip("/")
        if source.is_dir():
            files = sorted(p for p in source.rglob("*") if p.is_file())
            if not files:  # else a URI to nothing (or to the run's root), said to be logged
                raise ValueError(f"log_artifact: {source} holds no files: nothing to log")
            for file in files:
                rel = file.relative_to(source).as_posix()
                self._upload(file, f"{base}/{rel}" if base else rel)
            return f"runs:/{self.run_id}/{base}".rstrip("/")
        target = f"{base}/{source.name}" if base else source.name
        self._upload(source, target)
        return f"runs:/{self.run_id}/{target}"

    def log_text(self, text: str, artifact_file: str) -> str:
        """Store ``text`` as the artifact ``artifact_file`` (e.g. ``"cell.py"``)."""
        if not isinstance(text, str):
            raise TypeError(f"text: expected a string, got {type(text).__name__}")
        if not isinstance(artifact_file, str) or not Path(artifact_file).name:
            raise ValueError(f"artifact_file: {artifact_file!r} names no file (e.g. 'notes.txt')")
        with tempfile.TemporaryDirectory() as tmp:
            file = Path(tmp) / Path(artifact_file).name
            file.write_text(text, encoding="utf-8")
            return self.log_artifact(file, _parent(artifact_file))

    def artifact_uri(self) -> str:
        if not self.info.get("artifact_uri"):
            got = self.client.request(
                "GET", f"{self._mlflow_api}/runs/get", params={"run_id": self.run_id}
            )
            self.info.update(got["run"]["info"])
        return str(self.info["artifact_uri"])

    def _upload(self, file: Path, target: str) -> None:
        root = self.artifact_uri()
        if not root.startswith(ARTIFACTS_SCHEME):  # not proxied by MLflow: its own client
            self._mlflow_client().log_artifact(self.run_id, str(file), _parent(target) or None)
            return
        where = root[len(ARTIFACTS_SCHEME) :].lstrip("/")
        url = (
            f"{self.client.mlflow_url(self.project)}/api/2.0/mlflow-artifacts/artifacts/"
            f"{quote(where)}/{quote(target)}"
        )
        tries = self.client.retries
        for attempt in range(tries):
            if attempt:
                time.sleep(self.client.backoff * (2 ** (attempt - 1)))
            try:
                with file.open("rb") as fh:
                    self.client.send("PUT", url, content=fh)
                return
            except (ConnectionFailed, ServerError) as exc:
                # Putting the same bytes at the same path again is harmless: a connection
                # dropped midway or a gateway error (MLflow dropped it: 502, 504) is retried.
                # (send() has retried what never reached the server already.)
                retry = exc.code == "failed_midway" or exc.status in (502, 504)
                if not retry or attempt == tries - 1:
                    raise

    def log_model(
        self, model: Any, name: str = "model", *, flavor: str | None = None, **kwargs: Any
    ) -> str:
        """Store a model under the artifact folder ``name``; answers its ``runs:/`` URI.

        ``model`` may be a folder (stored as is), an ``mlflow.pyfunc.PythonModel`` (saved as an
        MLflow pyfunc model), or an object of an MLflow flavor (``flavor="sklearn"``,
        ``"pytorch"``, ...; scikit-learn and PyTorch models are recognised by themselves).
        ``kwargs`` go to the flavor's ``save_model``. Register it with ``wb.models.register``.
        """
        if isinstance(model, (str, os.PathLike)):
            folder = Path(model).expanduser()
            if not folder.is_dir():
                raise ValueError(f"log_model: {folder} is not a folder")
            return self.log_artifact(folder, name)
        flavor = flavor or _flavor_of(model)
        import importlib

        try:
            module = importlib.import_module(f"mlflow.{flavor}")
        except ImportError as exc:
            raise ValueError(f"log_model: MLflow has no flavor {flavor!r}: {exc}") from None
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / name
            if flavor == "pyfunc":
                module.save_model(str(out), python_model=model, **kwargs)
            else:
                module.save_model(model, str(out), **kwargs)
            return self.log_artifact(out, name)

    def _mlflow_client(self) -> Any:
        from mlflow.tracking import MlflowClient

        os.environ["MLFLOW_TRACKING_TOKEN"] = self.client.token or ""
        uri = self.client.mlflow_url(self.project)
        return MlflowClient(tracking_uri=uri, registry_uri=uri)

    # -- lifecycle -------------------------------------------------------------------------
    def activate(self) -> None:
        """Make this the active run: lineage, and plain ``mlflow`` calls, go to it."""
        if self in _active:
            return
        _active.append(self)
        env = {
            "MLFLOW_TRACKING_URI": self.client.mlflow_url(self.project),
            "MLFLOW_TRACKING_TOKEN": self.client.token or "",
            "MLFLOW_RUN_ID": self.run_id,
        }
        self._saved_env = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        _import_mlflow()
        # at exit, before MLflow's own handler (registered as it was imported, so run first),
        # which would end the run without its last points, printing its URL to stdout
        atexit.unregister(_end_at_exit)
        atexit.register(_end_at_exit)
        mlflow_utils = sys.modules.get("mlflow.tracking._tracking_service.utils")
        if mlflow_utils is not None:  # already imported: its URI may be set explicitly
            self._saved_mlflow_uri = getattr(mlflow_utils, "_tracking_uri", None)
            mlflow_utils._tracking_uri = None  # type: ignore[attr-defined]
        parent = self._become_mlflow_active_run()
        if parent is not None:  # shown under it in MLflow, as its own nested runs are
            with contextlib.suppress(WorkbenchError):
                self.set_tags({"mlflow.parentRunId": parent})

    def _become_mlflow_active_run(self) -> str | None:
        """Where MLflow is installed (``activate`` imports it), make this run its active run
        now, as its first fluent call would (from ``MLFLOW_RUN_ID``, which it then unsets).
        Left to that call, a ``with mlflow.start_run()`` or an autologged ``fit`` would take
        the run as its own and end it, and the calls after it would start stray runs in
        ``Default``; active from the start, autolog logs to it and ``start_run(nested=True)``
        makes a child (in the run's experiment, whatever ``mlflow.set_experiment`` chose
        before). A plain ``with mlflow.start_run()`` in it is MLflow's "already active".
        Answers the id of the run MLflow had active, where it is in the same project (another
        ``wb.run``, or an ``mlflow.start_run()``): this run's parent."""
        fluent = sys.modules.get("mlflow.tracking.fluent")
        if fluent is None:  # not installed: MLFLOW_RUN_ID leads its first call here
            return None
        chosen = getattr(fluent, "_active_experiment_id", None)
        fluent._active_experiment_id = self.experiment_id or None  # type: ignore[attr-defined]
        outer = fluent.active_run()
        try:
            fluent.start_run(run_id=self.run_id, nested=outer is not None)
        except Exception:  # MLflow cannot: its first call takes MLFLOW_RUN_ID, as before
            fluent._active_experiment_id = chosen  # type: ignore[attr-defined]
            return None
        self._saved_experiment = (chosen,)
        os.environ.pop("MLFLOW_RUN_ID", None)  # as MLflow does: else start_run resumes ours
        where = self._saved_mlflow_uri or self._saved_env.get("MLFLOW_TRACKING_URI") or ""
        if outer is None or str(where).rstrip("/") != self.client.mlflow_url(self.project):
            return None
        return str(outer.info.run_id)

    def _deactivate(self, status: str, quick: bool = False) -> None:
        if self not in _active:
            return
        _active.remove(self)
        mlflow = sys.modules.get("mlflow")
        if mlflow is not None:
            with contextlib.suppress(Exception):  # a fluent run on ours: end it with ours
                current = mlflow.active_run()
                if current is not None and current.info.run_id == self.run_id:
                    self._end_mlflow_run(mlflow, status, quick)
            mlflow_utils = sys.modules.get("mlflow.tracking._tracking_service.utils")
            if mlflow_utils is not None:
                mlflow_utils._tracking_uri = self._saved_mlflow_uri  # type: ignore[attr-defined]
            fluent = sys.modules.get("mlflow.tracking.fluent")
            if fluent is not None and self._saved_experiment:
                fluent._active_experiment_id = self._saved_experiment[0]  # type: ignore[attr-defined]
        _restore_env(self._saved_env)

    def _end_mlflow_run(self, mlflow: Any, status: str, quick: bool) -> None:
        """End MLflow's side of the run (it leaves MLflow's stack first in any case); ``quick``
        where the workbench could not record the end (the server gone, the client closed),
        and with its system metrics monitor stopped if ``end_run`` fails (it leaves it
        running)."""
        with _mlflow_env({**_MLFLOW_QUIET, **(_MLFLOW_QUICK if quick else {})}):
            try:
                mlflow.end_run(status)
            except Exception:
                fluent = sys.modules.get("mlflow.tracking.fluent")
                monitors = getattr(fluent, "run_id_to_system_metrics_monitor", {})
                monitor = monitors.pop(self.run_id, None)
                if monitor is not None:
                    with contextlib.suppress(Exception):
                        monitor.finish()
                raise

    def flush(self, timeout: float = 60.0) -> None:
        """Wait until every queued point is stored (or raise why it could not be)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            self._lock.notify_all()
            while self._sent < self._queued and self._error is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    why = f": {self._trouble.message}" if self._trouble is not None else ""
                    raise ConnectionFailed(
                        f"{self._queued - self._sent} points not sent after {timeout:.0f}s{why}"
                    )
                self._lock.wait(min(remaining, 0.5))
        if self._error is not None:
            raise self._error

    def end(self, status: str = "FINISHED", timeout: float = 60.0) -> None:
        """Flush, then mark the run finished (or FAILED/KILLED, in any case). Points the server
        refused make the run FAILED, and the refusal is raised. Another status is a
        ``ValueError``, and the run stays open."""
        if self._closed:
            return
        if not isinstance(status, str) or status.upper() not in END_STATUSES:
            raise ValueError(
                f"end: status must be one of {', '.join(END_STATUSES)}, got {status!r:.60}"
            )
        status = status.upper()
        refused: WorkbenchError | None = None
        interrupted = False
        try:
            self.flush(timeout)
        except WorkbenchError as exc:
            refused, status = exc, "FAILED"
        except KeyboardInterrupt:  # ended all the same (KILLED), then the interrupt goes on
            interrupted, status = True, "KILLED"
        finally:
            self._closed = True
            with self._lock:
                self._lock.notify_all()
        failed: WorkbenchError | None = None
        try:
            self.client.request(
                "POST",
                f"{self._mlflow_api}/runs/update",
                json={
                    "run_id": self.run_id,
                    "status": status,
                    "end_time": int(time.time() * 1000),
                },
            )
        except WorkbenchError as exc:
            failed = exc
        else:
            self.status = status
        finally:  # MLflow's side after ours: quick where ours could not be recorded
            self._deactivate(status, quick=failed is not None)
        if interrupted:
            _open_runs.discard(self)
            raise KeyboardInterrupt
        if failed is not None and refused is None:
            raise failed
        _open_runs.discard(self)
        if refused is not None:
            raise refused

    def __enter__(self) -> Run:
        self.activate()
        return self

    def __exit__(self, kind: Any, value: Any, _tb: Any) -> None:
        if kind is None or (kind is SystemExit and value.code in (0, None)):  # sys.exit(0)
            self.end("FINISHED")
            return
        try:  # the block's own exception is what the caller must see
            self.end("KILLED" if issubclass(kind, KeyboardInterrupt) else "FAILED")
        except WorkbenchError as exc:
            print(f"workbench: could not mark run {self.run_id[:8]} FAILED: {exc}", file=sys.stderr)

    # -- the background sender -------------------------------------------------------------
    def _sender(self) -> None:
        failing_since: float | None = None
        delay = SEND_INTERVAL
        while True:
            with self._lock:
                if not self._points:
                    if self._closed:
                        return
                    self._lock.wait(SEND_INTERVAL)
                    if not self._points:
                        continue
                batch = [
                    self._points.popleft() for _ in range(min(BATCH_POINTS, len(self._points)))
                ]
            try:
                self.client.post(f"runs/{self.run_id}/batch", {"metrics": batch})
            except WorkbenchError as exc:
                now = time.monotonic()
                transient = isinstance(exc, ConnectionFailed) or exc.status in TRANSIENT_STATUS
                failing_since = failing_since or now
                if not transient or self._closed or now - failing_since > OUTAGE_SECONDS:
                    if transient and not self._closed:
                        exc = ConnectionFailed(
                            f"{exc.message} (for {now - failing_since:.0f}s: logging stopped)"
                        )
                    with self._lock:
                        self._error = exc
                        self._points.clear()
                        self._lock.notify_all()
                    return
                with self._lock:  # keep the points, in order, and try again in a while
                    self._points.extendleft(reversed(batch))
                    self._trouble = exc
                    self._lock.notify_all()
                time.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)
                continue
            failing_since, delay = None, SEND_INTERVAL
            with self._lock:
                self._sent += len(batch)
                self._trouble = None
                self._lock.notify_all()


def _parent(path: str) -> str:
    parent = Path(path).parent.as_posix()
    return "" if parent == "." else parent


def _flavor_of(model: Any) -> str:
    module = type(model).__module__.split(".")[0]
    if module == "sklearn":
        return "sklearn"
    if module == "torch":
        return "pytorch"
    import mlflow.pyfunc

    if isinstance(model, mlflow.pyfunc.PythonModel) or callable(model):
        return "pyfunc"
    raise TypeError(
        f"log_model: cannot tell how to save a {type(model).__name__}; pass a folder, an "
        "mlflow.pyfunc.PythonModel, or flavor='<an mlflow flavor>'"
    )


def _mapping(given: Any, what: str) -> Mapping[Any, Any]:
    if not isinstance(given, Mapping):
        raise TypeError(
            f"{what}: expected a dict of name -> value, got {type(given).__name__} {given!r:.60}"
        )
    return given


def _whole_step(step: Any) -> int:
    """``step`` as an int (``3``, ``numpy.int64(3)``, ``3.0``) within 64 bits, else a
    ``TypeError``/``ValueError`` saying so."""
    if type(step) is int and INT64_MIN <= step <= INT64_MAX:  # the training loop's case: fast
        return step
    if isinstance(step, float) and step.is_integer():
        step = int(step)
    try:
        if isinstance(step, bool):
            raise TypeError
        number = operator.index(step)
    except TypeError:
        raise TypeError(
            f"log: step must be a whole number, got {type(step).__name__} {step!r:.60}"
        ) from None
    if not INT64_MIN <= number <= INT64_MAX:
        raise ValueError(f"log: step {number} is out of range (a 64-bit integer)")
    return number


def _metric_key(key: Any) -> str:
    if not isinstance(key, str):
        raise TypeError(
            f"log: a metric name must be a string, got {type(key).__name__} {key!r:.60}"
        )
    if not key:
        raise ValueError("log: a metric name must not be empty")
    problem = run_key_problem(key)
    if problem:  # the server would refuse the whole batch, later, away from this call
        raise ValueError(f"log: metric name {key!r:.60}: {problem}")
    return key


def _jsonable(key: str, value: Any) -> Any:
    """A metric's value for JSON (NaN and infinities as MLflow writes them)."""
    try:
        if isinstance(value, (str, bytes, bytearray)):  # float("0.5") would take it
            raise TypeError
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(
            f"log: metric {key!r} must be a number, got {type(value).__name__} {value!r:.60}"
        ) from None
    except OverflowError:
        raise ValueError(f"log: metric {key!r} is too large for a float") from None
    if number != number:
        return "NaN"
    if number in (float("inf"), float("-inf")):
        return "Infinity" if number > 0 else "-Infinity"
    return number


def _import_mlflow() -> None:
    """Import MLflow (where installed) as a run starts, so that the run is MLflow's active run
    from the start: imported later, by the run's code, its first ``with mlflow.start_run()``
    took the run from ``MLFLOW_RUN_ID`` and ended it (FINISHED while still being logged to),
    and the ``mlflow`` calls after that block made a stray run in another experiment."""
    if "mlflow.tracking.fluent" in sys.modules:
        return
    import importlib.util

    with contextlib.suppress(Exception):  # not installed, or broken: MLFLOW_RUN_ID as before
        if importlib.util.find_spec("mlflow") is not None:
            import mlflow  # noqa: F401


_uncaught: list[BaseException] = []


def _watch_uncaught() -> None:
    """Note an exception that ends the program, so runs still open end FAILED at exit."""
    previous = sys.excepthook
    if getattr(previous, "_workbench", False):
        return

    def hook(kind: type[BaseException], value: BaseException, tb: Any) -> None:
        _uncaught.append(value)
        previous(kind, value, tb)

    hook._workbench = True  # type: ignore[attr-defined]
    sys.excepthook = hook


@atexit.register
def _end_at_exit() -> None:
    """Runs nobody ended (a script without ``with``/``end()``): flush, then end them FINISHED,
    or FAILED when the program ends with an exception (KILLED: with Ctrl-C)."""
    status = "FAILED" if _uncaught else "FINISHED"
    if _uncaught and isinstance(_uncaught[-1], KeyboardInterrupt):  # Ctrl-C, as in a block
        status = "KILLED"
    for run in list(_open_runs):
        try:
            run.end(status, timeout=30)
        except Exception as exc:  # the program is ending: one line, not a traceback
            print(f"workbench: could not end run {run.run_id} at exit: {exc}", file=sys.stderr)
