"""The v1 API's wire types as dataclasses (docs/api.md).

Each field is named as its JSON key is, in snake_case; the one exception is
``from`` (a pipe's writing end), a Python keyword, which is ``from_`` here.
A field left as ``None`` is left out of what is sent, so the daemon applies
its default. Answers may gain fields; decoding ignores the ones it does not
know.
"""

from __future__ import annotations

import dataclasses
import sys
import typing
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Union

__all__ = [
    "Limits", "File", "Step", "Program", "Pipe", "Job",
    "StepResult", "ProgramResult", "PipeCapture", "TrackedFile", "Timing", "CachedFile", "Result",
    "Event", "BatchItem", "BatchSummary", "RunInfo",
    "CgroupInfo", "ProfileInfo", "PoolInfo", "ConfigInfo", "Info", "CachedFileInfo",
    "VERDICTS", "job_verdict",
]

# Every verdict a step may have (docs/api.md, "Verdicts and measurements").
VERDICTS = (
    "ok", "nonzero_exit", "signaled", "cpu_time_limit", "wall_time_limit", "memory_limit",
    "output_limit", "syscall_blocked", "exec_failed", "skipped", "cancelled", "internal_error",
)


def _json_name(f: dataclasses.Field) -> str:
    return f.metadata.get("json", f.name)


def to_wire(value: Any) -> Any:
    """Turns a dataclass (and what it holds) into JSON-ready data, leaving
    out every field that is None."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {}
        for f in dataclasses.fields(value):
            v = getattr(value, f.name)
            if v is not None:
                out[_json_name(f)] = to_wire(v)
        return out
    if isinstance(value, dict):
        return {k: to_wire(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_wire(v) for v in value]
    return value


_hints_cache: Dict[type, Dict[str, Any]] = {}


def _hints(cls: type) -> Dict[str, Any]:
    h = _hints_cache.get(cls)
    if h is None:
        h = typing.get_type_hints(cls, vars(sys.modules[cls.__module__]))
        _hints_cache[cls] = h
    return h


def _decode(tp: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin is Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _decode(args[0], value) if len(args) == 1 else value
    if origin in (list, List):
        (item,) = typing.get_args(tp)
        return [_decode(item, v) for v in value]
    if origin in (dict, Dict):
        _, item = typing.get_args(tp)
        return {k: _decode(item, v) for k, v in value.items()}
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return from_wire(tp, value)
    return value


T = typing.TypeVar("T")


def from_wire(cls: typing.Type[T], data: Dict[str, Any]) -> T:
    """Builds a dataclass from decoded JSON; unknown keys are ignored."""
    hints = _hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        name = _json_name(f)
        if name in data:
            kwargs[f.name] = _decode(hints[f.name], data[name])
    return cls(**kwargs)


# ---- the job ----------------------------------------------------------------

@dataclass
class Limits:
    """Bounds of one step or program; None takes the profile's default.
    Each set value is at least 1 and at most the profile's maximum."""
    cpu_time_ms: Optional[int] = None
    wall_time_ms: Optional[int] = None
    memory_bytes: Optional[int] = None
    pids: Optional[int] = None
    output_bytes: Optional[int] = None
    file_size_bytes: Optional[int] = None
    open_files: Optional[int] = None
    stack_bytes: Optional[int] = None
    # The rate of CPU use, in CPUs (0.5, 1, 2.5): a decimal from 0.01.
    cpus: Optional[float] = None


@dataclass
class File:
    """An input file in its object form. A plain ``str`` in ``Job.files`` is
    UTF-8 text of mode 0644; use File for bytes (``base64``), another
    ``mode`` (octal text such as "0755"), or a ``cached`` file id."""
    content: Optional[str] = None
    base64: Optional[str] = None
    mode: Optional[str] = None
    cached: Optional[str] = None


@dataclass
class Program:
    """One program of an interactive step."""
    name: str
    argv: List[str]
    env: Optional[Dict[str, str]] = None
    limits: Optional[Limits] = None
    workspace: Optional[str] = None  # "job" (default) or "private"


@dataclass
class Pipe:
    """Joins two programs of a step: ``from_`` ("name:fd") writes, ``to`` reads."""
    from_: str = field(metadata={"json": "from"})
    to: str = ""
    capture_bytes: Optional[int] = None


@dataclass
class Step:
    """One command run in the job's workspace, in a sandbox of its own."""
    argv: Optional[List[str]] = None
    env: Optional[Dict[str, str]] = None
    stdin: Optional[str] = None
    stdin_base64: Optional[str] = None
    stdin_cached: Optional[str] = None
    expected_stdout: Optional[str] = None
    limits: Optional[Limits] = None
    programs: Optional[List[Program]] = None
    pipes: Optional[List[Pipe]] = None
    stdout_to: Optional[str] = None
    expected_stdout_file: Optional[str] = None
    compare: Optional[str] = None  # lines (default), exact, tokens, float
    float_abs: Optional[float] = None
    float_rel: Optional[float] = None


@dataclass
class Job:
    """The body of POST /v1/run and one line of a batch. Only ``steps`` is
    required. ``key`` is any JSON value, echoed back."""
    steps: List[Step] = field(default_factory=list)
    id: Optional[str] = None
    key: Any = None
    profile: Optional[str] = None
    files: Optional[Dict[str, Union[str, File]]] = None
    stop_on: Optional[str] = None  # "failure" (default) or "never"
    tracked_files: Optional[List[str]] = None
    workspace_bytes: Optional[int] = None
    output_encoding: Optional[str] = None  # "utf8" (default) or "base64"
    keep_files: Optional[List[str]] = None
    # Pause after each step that does not end the job, until
    # Client.continue_run(id): see Client.continue_run.
    pause_between_steps: Optional[bool] = None

    def to_dict(self) -> Dict[str, Any]:
        """The job as the JSON object sent on the wire."""
        return to_wire(self)


# ---- results ----------------------------------------------------------------

@dataclass
class PipeCapture:
    """The traffic of a pipe with capture_bytes."""
    from_: str = field(default="", metadata={"json": "from"})
    to: str = ""
    data: str = ""
    truncated: bool = False


@dataclass
class StepResult:
    """What one step did and used. ``stdout_matches`` is None unless the
    step had an expected output."""
    verdict: str = ""
    exit_code: int = 0
    signal: str = ""
    stdout: str = ""
    stderr: str = ""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    stdout_matches: Optional[bool] = None
    cpu_time_ms: float = 0.0
    user_time_ms: float = 0.0
    sys_time_ms: float = 0.0
    wall_time_ms: float = 0.0
    memory_peak_bytes: int = 0
    max_rss_bytes: int = 0
    pids_peak: int = 0
    throttled_ms: int = 0
    message: str = ""
    programs: Optional[List["ProgramResult"]] = None
    pipes: Optional[List[PipeCapture]] = None

    @property
    def ok(self) -> bool:
        """The step exited 0 within its limits and matched its expected
        output, if it had one."""
        return self.verdict == "ok" and self.stdout_matches is not False


@dataclass
class ProgramResult(StepResult):
    """What one program of an interactive step did; ``name`` is its own."""
    name: str = ""


@dataclass
class TrackedFile:
    """A workspace file read back after the job; a missing one is None."""
    content: str = ""
    truncated: bool = False


@dataclass
class Timing:
    """A job's timing, in milliseconds."""
    queued_ms: float = 0.0
    setup_ms: float = 0.0
    total_ms: float = 0.0


@dataclass
class CachedFile:
    """A file of the daemon's cache: ``id`` is its content's SHA-256."""
    id: str = ""
    size: int = 0


@dataclass
class Result:
    """What a job did. ``status`` is completed, cancelled or error."""
    id: str = ""
    status: str = ""
    message: str = ""
    steps: List[StepResult] = field(default_factory=list)
    files: Optional[Dict[str, Optional[TrackedFile]]] = None
    timing: Timing = field(default_factory=Timing)
    kept: Optional[Dict[str, CachedFile]] = None

    @property
    def verdict(self) -> str:
        """The job's verdict as a batch summary counts it: its first step
        that is not ok, wrong_answer for an ok step whose stdout did not
        match, else ok."""
        return job_verdict(self)


def job_verdict(result: Result) -> str:
    """See Result.verdict."""
    for s in result.steps:
        if s.verdict != "ok":
            return s.verdict
        if s.stdout_matches is False:
            return "wrong_answer"
    return "ok"


@dataclass
class APIErrorBody:
    """The body of an error answer, and of an error line or event."""
    code: str = ""
    message: str = ""


@dataclass
class Event:
    """One line of a streamed run. ``result`` is a StepResult for
    "step_finished" and a Result for "finished"."""
    event: str = ""
    id: Optional[str] = None
    step: Optional[int] = None
    data: Optional[str] = None
    result: Union[StepResult, Result, None] = None
    error: Optional[APIErrorBody] = None

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "Event":
        ev = from_wire(cls, {k: v for k, v in d.items() if k != "result"})
        r = d.get("result")
        if r is not None:
            ev.result = from_wire(Result if ev.event == "finished" else StepResult, r)
        return ev


@dataclass
class BatchItem:
    """One finished job of a batch: ``index`` is its place in the input,
    from 0; ``result`` is set when it ran, ``error`` when it was refused."""
    index: int = 0
    key: Any = None
    result: Optional[Result] = None
    error: Optional[APIErrorBody] = None

    @property
    def verdict(self) -> str:
        """As Result.verdict; "invalid" for a refused job."""
        return "invalid" if self.result is None else job_verdict(self.result)


@dataclass
class BatchSummary:
    """The last line of a batch."""
    total: int = 0
    statuses: Dict[str, int] = field(default_factory=dict)
    verdicts: Dict[str, int] = field(default_factory=dict)
    invalid: int = 0
    wall_ms: float = 0.0


@dataclass
class RunInfo:
    """A job as GET /v1/runs lists it."""
    id: str = ""
    key: Any = None
    caller_uid: int = 0
    state: str = ""  # queued, running, finished
    age_ms: float = 0.0
    step: int = 0
    steps: int = 0
    result: Optional[Result] = None


@dataclass
class CgroupInfo:
    mode: str = ""
    controllers: List[str] = field(default_factory=list)
    paths: Dict[str, str] = field(default_factory=dict)


@dataclass
class ProfileInfo:
    name: str = ""
    default_limits: Limits = field(default_factory=Limits)
    max_limits: Limits = field(default_factory=Limits)
    workspace_bytes: int = 0
    max_workspace_bytes: int = 0


@dataclass
class PoolInfo:
    concurrency: int = 0
    queue_size: int = 0
    running: int = 0
    queued: int = 0
    warm_sandboxes: int = 0
    warm_ready: int = 0
    workspaces_ready: int = 0


@dataclass
class ConfigInfo:
    generation: int = 0
    reload_error: str = ""
    restart_pending: Optional[List[str]] = None


@dataclass
class Info:
    """GET /v1/info: the daemon, its host, its profiles and its load."""
    version: str = ""
    kernel: str = ""
    cgroup: CgroupInfo = field(default_factory=CgroupInfo)
    features: Dict[str, bool] = field(default_factory=dict)
    profiles: List[ProfileInfo] = field(default_factory=list)
    pool: PoolInfo = field(default_factory=PoolInfo)
    config: ConfigInfo = field(default_factory=ConfigInfo)

    def profile(self, name: str = "default") -> ProfileInfo:
        """The profile of that name (KeyError when there is none)."""
        for p in self.profiles:
            if p.name == name:
                return p
        raise KeyError(f"profile {name!r} does not exist")


@dataclass
class CachedFileInfo:
    """One entry of GET /v1/files."""
    id: str = ""
    size: int = 0
    last_used: str = ""
    uploaded_by: int = 0
