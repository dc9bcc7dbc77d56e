"""sandboxd: the Python client of the sandboxd daemon's v1 API.

    from sandboxd import Client, Job, Step, Limits
    c = Client()  # $SANDBOXD_SOCKET, else /run/sandboxd/sandboxd.sock
    r = c.run(Job(files={"main.py": "print(6 * 7)"},
                  steps=[Step(argv=["python3", "main.py"], limits=Limits(cpu_time_ms=1000))]))
    print(r.steps[0].verdict, r.steps[0].stdout)

``sandboxd.code_execution`` offers the API of the ``code_execution`` module
(simple-code-execution) with every program run in a sandbox.
"""

from .client import (
    DEFAULT_SOCKET, SOCKET_ENV, BatchStream, Client, Conflict, EventStream, Internal,
    InvalidArgument, NotFound, PermissionDenied, ProtocolError, ResourceExhausted, SandboxdError,
    Unavailable, UnreachableError,
)
from .progress import Progress
from .types import (
    VERDICTS, BatchItem, BatchSummary, CachedFile, CachedFileInfo, CgroupInfo, ConfigInfo, Event,
    File, Info, Job, Limits, Pipe, PipeCapture, PoolInfo, ProfileInfo, Program, ProgramResult,
    Result, RunInfo, Step, StepResult, Timing, TrackedFile, job_verdict,
)

__version__ = "0.1.0"

__all__ = [
    "Client", "DEFAULT_SOCKET", "SOCKET_ENV", "SandboxdError", "InvalidArgument", "PermissionDenied",
    "NotFound", "Conflict", "ResourceExhausted", "Unavailable", "Internal", "UnreachableError",
    "ProtocolError", "EventStream", "BatchStream", "Progress",
    "Job", "Step", "File", "Limits", "Program", "Pipe", "Result", "StepResult", "ProgramResult",
    "PipeCapture", "TrackedFile", "Timing", "CachedFile", "CachedFileInfo", "Event", "BatchItem",
    "BatchSummary", "RunInfo", "Info", "CgroupInfo", "ProfileInfo", "PoolInfo", "ConfigInfo",
    "VERDICTS", "job_verdict",
]
