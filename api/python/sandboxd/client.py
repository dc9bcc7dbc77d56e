"""The client of the sandboxd v1 API: HTTP/1.1 over the daemon's Unix socket
(docs/api.md), with the standard library alone.

Errors:
  - an error answer of the daemon is a SandboxdError (a subclass per API
    code: InvalidArgument, NotFound, ...) carrying ``code``, ``message`` and
    the HTTP ``status``; an error line that ends a batch is one too;
  - nothing answering on the socket is an UnreachableError, which names it;
  - an answer that breaks off or is not what the API says is a ProtocolError.

There is no timeout: a run lasts as long as its limits allow. Closing a
stream or leaving a batch early closes its connection, and the daemon then
cancels what is left of it.
"""

from __future__ import annotations

import http.client
import json
import os
import socket as _socket
import threading
import urllib.parse
from typing import Any, BinaryIO, Dict, Iterable, Iterator, List, Optional, Union

from .progress import Progress
from .types import (
    APIErrorBody, BatchItem, BatchSummary, CachedFile, CachedFileInfo, Event, Info, Job, Result,
    RunInfo, from_wire, to_wire,
)

__all__ = [
    "Client", "DEFAULT_SOCKET", "SOCKET_ENV", "SandboxdError", "InvalidArgument", "PermissionDenied",
    "NotFound", "Conflict", "ResourceExhausted", "Unavailable", "Internal", "UnreachableError",
    "ProtocolError", "EventStream", "BatchStream",
]

DEFAULT_SOCKET = "/run/sandboxd/sandboxd.sock"
"""Where the daemon listens unless told otherwise."""

SOCKET_ENV = "SANDBOXD_SOCKET"
"""The environment variable read when Client is given no socket."""

_JSON = "application/json"
_NDJSON = "application/x-ndjson"
_USER_AGENT = "sandboxd-python/1"

JobLike = Union[Job, Dict[str, Any]]


# ---- errors -----------------------------------------------------------------

class SandboxdError(Exception):
    """An error answer of the daemon: ``code`` is the API's error code
    (invalid_argument, not_found, ...), ``message`` its text, ``status`` the
    HTTP status (0 for an error line of a batch), ``retry_after`` the
    seconds of a Retry-After header, or None."""

    def __init__(self, code: str, message: str, status: int = 0,
                 retry_after: Optional[float] = None) -> None:
        super().__init__(code, message, status)
        self.code = code
        self.message = message
        self.status = status
        self.retry_after = retry_after

    def __str__(self) -> str:
        s = f"{self.code}: {self.message}"
        if self.status:
            s += f" (HTTP {self.status}"
            if self.retry_after:
                s += f", retry after {self.retry_after:g}s"
            s += ")"
        return s


class InvalidArgument(SandboxdError):
    """invalid_argument: the job or a parameter is not valid (the message names the field)."""


class PermissionDenied(SandboxdError):
    """permission_denied: the caller may not use the API, or not on that job."""


class NotFound(SandboxdError):
    """not_found: no such endpoint, job (or its result expired) or cached file."""


class Conflict(SandboxdError):
    """conflict: an id in use, a cancel of a finished job, a file a job holds."""


class ResourceExhausted(SandboxdError):
    """resource_exhausted: the queue or the cache is full; retry later."""


class Unavailable(SandboxdError):
    """unavailable: the daemon is shutting down."""


class Internal(SandboxdError):
    """internal: reserved by the API."""


_ERROR_CLASSES = {
    "invalid_argument": InvalidArgument,
    "permission_denied": PermissionDenied,
    "not_found": NotFound,
    "conflict": Conflict,
    "resource_exhausted": ResourceExhausted,
    "unavailable": Unavailable,
    "internal": Internal,
}

_CODE_FOR_STATUS = {400: "invalid_argument", 401: "permission_denied", 403: "permission_denied",
                    404: "not_found", 409: "conflict", 429: "resource_exhausted",
                    503: "unavailable", 500: "internal"}


def api_error(code: str, message: str, status: int = 0,
              retry_after: Optional[float] = None) -> SandboxdError:
    """The SandboxdError subclass for an API code."""
    return _ERROR_CLASSES.get(code, SandboxdError)(code, message, status, retry_after)


def _status_error(status: int, body: bytes, retry_after: Optional[str]) -> SandboxdError:
    ra: Optional[float] = None
    if retry_after:
        try:
            ra = float(retry_after)
        except ValueError:
            ra = None
    try:
        err = json.loads(body)["error"]
        return api_error(err["code"], err.get("message", ""), status, ra)
    except (ValueError, KeyError, TypeError):
        text = body.decode("utf-8", "replace").strip()[:200]
        msg = f"the daemon's answer is not a JSON error: {text!r}" if text else "the daemon's answer has no body"
        return api_error(_CODE_FOR_STATUS.get(status, f"http_{status}"), msg, status, ra)


class UnreachableError(ConnectionError):
    """Nothing answered on the socket: no daemon, no socket file, or no
    permission to use it. ``socket`` is its path."""

    def __init__(self, socket: str, cause: OSError) -> None:
        hint = "is the daemon running? pass socket= or set SANDBOXD_SOCKET"
        if isinstance(cause, PermissionError):
            hint = "may this user use the socket? pass socket= or set SANDBOXD_SOCKET"
        reason = cause.strerror or str(cause)
        super().__init__(f"cannot reach sandboxd at {socket}: {reason} ({hint})")
        self.socket = socket
        self.cause = cause


class ProtocolError(Exception):
    """The daemon's answer broke off, or is not what the API says."""


# ---- transport --------------------------------------------------------------

def _connect(path: str) -> _socket.socket:
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        s.connect(path)
    except OSError as e:
        s.close()
        raise UnreachableError(path, e) from None
    return s


class UnixHTTPConnection(http.client.HTTPConnection):
    """An HTTPConnection to a Unix socket; the host in the URL is a placeholder."""

    def __init__(self, path: str) -> None:
        super().__init__("sandboxd", timeout=None)
        self.unix_path = path

    def connect(self) -> None:
        self.sock = _connect(self.unix_path)


def _encode_job(job: JobLike) -> bytes:
    data = job.to_dict() if isinstance(job, Job) else to_wire(job)
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# ---- the client -------------------------------------------------------------

class Client:
    """Talks to one daemon. Safe to share between threads: each thread keeps
    a connection of its own open between calls. Jobs are Job dataclasses or
    plain dicts shaped as the API's JSON."""

    def __init__(self, socket: Optional[str] = None) -> None:
        """socket: the daemon's socket; None is $SANDBOXD_SOCKET, else
        DEFAULT_SOCKET. Nothing is dialled until the first call."""
        self._socket = socket or os.environ.get(SOCKET_ENV) or DEFAULT_SOCKET
        self._local = threading.local()
        self._mu = threading.Lock()
        self._conns: List[UnixHTTPConnection] = []  # every thread's, for close()

    @property
    def socket(self) -> str:
        """The path of the daemon's socket."""
        return self._socket

    def close(self) -> None:
        """Closes the connections kept open for later calls; a later call
        opens a new one."""
        with self._mu:
            conns, self._conns = self._conns, []
        for c in conns:
            c.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _conn(self) -> UnixHTTPConnection:
        c = getattr(self._local, "conn", None)
        if c is None:
            c = UnixHTTPConnection(self._socket)
            self._local.conn = c
            with self._mu:
                self._conns.append(c)
        return c

    def request(self, method: str, path: str, body: Optional[bytes] = None,
                content_type: Optional[str] = None, accept: str = _JSON) -> bytes:
        """Sends one request on this thread's connection and returns the
        body of a 2xx answer; other answers raise SandboxdError. The typed
        calls are built on it."""
        headers = {"Accept": accept, "User-Agent": _USER_AGENT}
        if body is not None:
            headers["Content-Type"] = content_type or _JSON
        for attempt in (0, 1):
            conn = self._conn()
            reused = conn.sock is not None
            try:
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
                conn.close()
                # A kept-alive connection the daemon closed while idle: the
                # request never reached it, so it is sent once more.
                if reused and attempt == 0:
                    continue
                raise ProtocolError(f"{method} {path}: the connection broke: {e}") from None
            except BaseException:
                conn.close()
                raise
            if resp.will_close:
                conn.close()
            if not 200 <= resp.status <= 299:
                raise _status_error(resp.status, data, resp.getheader("Retry-After"))
            return data
        raise AssertionError("unreachable")

    def _json(self, method: str, path: str, body: Optional[bytes] = None) -> Any:
        data = self.request(method, path, body)
        try:
            return json.loads(data)
        except ValueError as e:
            raise ProtocolError(f"{method} {path}: the answer is not JSON: {e}") from None

    # -- calls ----------------------------------------------------------------

    def ping(self) -> None:
        """Checks that the daemon answers (raises otherwise)."""
        body = self.request("GET", "/_ping", accept="text/plain")
        if body.strip() != b"OK":
            raise ProtocolError(f"GET /_ping: the daemon answered {body[:100]!r}, not OK")

    def info(self) -> Info:
        """The daemon, its host, its profiles and its load (GET /v1/info)."""
        return from_wire(Info, self._json("GET", "/v1/info"))

    def run(self, job: JobLike) -> Result:
        """Runs one job and waits for its result (POST /v1/run). A program
        that fails is a verdict in the result, never an exception."""
        return from_wire(Result, self._json("POST", "/v1/run", _encode_job(job)))

    def stream(self, job: JobLike) -> "EventStream":
        """Runs one job and returns its events as they come (POST /v1/run
        with Accept: application/x-ndjson): started, stdout, stderr,
        step_finished, and finished last. The job's errors (a 400, say)
        are raised here. Closing the stream before its end cancels the job."""
        return EventStream(self._socket, _encode_job(job))

    def batch(self, jobs: Iterable[JobLike], concurrency: Optional[int] = None,
              progress: bool = True, total: Optional[int] = None,
              desc: str = "sandboxd") -> "BatchStream":
        """Runs many jobs through one POST /v1/batch and yields a BatchItem
        for each as it finishes (in completion order; ``index`` is its place
        in ``jobs``, ``key`` its key). ``jobs`` is read lazily, as the daemon
        takes them. ``concurrency`` caps how many of them run at once (the
        daemon's own concurrency when None). ``progress`` shows done/total,
        rate, ETA and verdict counts on stderr (tqdm when it is installed);
        ``total`` is the number of jobs when ``jobs`` has no len(). After
        the last item, the stream's ``summary`` is the batch's summary.
        Leaving the loop early cancels the jobs left."""
        if total is None and hasattr(jobs, "__len__"):
            total = len(jobs)  # type: ignore[arg-type]
        return BatchStream(self._socket, jobs, concurrency, Progress(total, desc, progress))

    def runs(self) -> List[RunInfo]:
        """The jobs queued or running now, oldest first (GET /v1/runs)."""
        return [from_wire(RunInfo, r) for r in self._json("GET", "/v1/runs")["runs"]]

    def get(self, id: str) -> RunInfo:
        """One job, live or finished with its result (GET /v1/runs/{id})."""
        return from_wire(RunInfo, self._json("GET", _run_path(id)))

    def continue_run(self, id: str) -> RunInfo:
        """Lets a job submitted with ``pause_between_steps`` run its next
        step (POST /v1/runs/{id}/continue). Such a job pauses after each
        step that does not end it, before that step's ``step_finished``
        event is sent, so a stream's reader decides from each step's result
        whether the next one runs: continue it, or cancel it (the steps
        after are skipped, none of them started). A job that is not paused
        is a Conflict; one left paused for a minute is cancelled."""
        return from_wire(RunInfo, self._json("POST", _run_path(id) + "/continue"))

    def cancel(self, id: str) -> RunInfo:
        """Cancels a queued or running job, killing all its processes, and
        returns it as the cancel found it (DELETE /v1/runs/{id}). A job that
        already finished is a Conflict."""
        return from_wire(RunInfo, self._json("DELETE", _run_path(id)))

    def metrics(self) -> str:
        """The daemon's metrics, Prometheus text."""
        return self.request("GET", "/metrics", accept="text/plain").decode("utf-8")

    def upload(self, data: Union[bytes, BinaryIO]) -> CachedFile:
        """Puts content into the daemon's file cache (POST /v1/files); its id
        is the content's SHA-256. A job names it as File(cached=id) or a
        step's stdin_cached."""
        if not isinstance(data, (bytes, bytearray)):
            data = data.read()
        body = self.request("POST", "/v1/files", bytes(data), content_type="application/octet-stream")
        return from_wire(CachedFile, json.loads(body))

    def files(self) -> List[CachedFileInfo]:
        """The caller's cached files (root's: every file) (GET /v1/files)."""
        return [from_wire(CachedFileInfo, f) for f in self._json("GET", "/v1/files")["files"]]

    def download(self, id: str) -> bytes:
        """A cached file's content (GET /v1/files/{id})."""
        return self.request("GET", _file_path(id), accept="application/octet-stream")

    def delete_file(self, id: str) -> None:
        """Takes a file out of the caller's cached files (DELETE /v1/files/{id})."""
        self.request("DELETE", _file_path(id))


def _run_path(id: str) -> str:
    if not id:
        raise ValueError("no run id given")
    return "/v1/runs/" + urllib.parse.quote(id, safe="")


def _file_path(id: str) -> str:
    if not id:
        raise ValueError("no file id given")
    return "/v1/files/" + urllib.parse.quote(id, safe="")


class EventStream:
    """The events of one streamed run, as an iterator; ``result`` is the
    job's Result once the finished event has come. Use it in a with block,
    or close() it, to cancel a job whose events you stop reading."""

    def __init__(self, socket: str, body: bytes) -> None:
        self.id: Optional[str] = None
        self.result: Optional[Result] = None
        self._conn = UnixHTTPConnection(socket)
        try:
            self._conn.request("POST", "/v1/run", body=body, headers={
                "Content-Type": _JSON, "Accept": _NDJSON, "User-Agent": _USER_AGENT})
            self._resp = self._conn.getresponse()
            if self._resp.status != 200:
                raise _status_error(self._resp.status, self._resp.read(), self._resp.getheader("Retry-After"))
        except BaseException:
            self._conn.close()
            raise

    def __iter__(self) -> Iterator[Event]:
        try:
            while True:
                line = self._resp.readline()
                if not line:
                    raise ProtocolError("POST /v1/run: the event stream ended before the job finished")
                line = line.strip()
                if not line:
                    continue
                ev = Event.from_dict(json.loads(line))
                if ev.event == "started":
                    self.id = ev.id
                yield ev
                if ev.event == "finished":
                    self.result = ev.result  # type: ignore[assignment]
                    return
                if ev.event == "error":
                    e = ev.error or APIErrorBody("internal", "an error event without an error")
                    raise api_error(e.code, e.message)
        finally:
            self.close()

    def close(self) -> None:
        """Closes the connection; a job still running is cancelled."""
        self._conn.close()

    def __enter__(self) -> "EventStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class BatchStream:
    """The finished jobs of one batch, as an iterator of BatchItem, in the
    order they finish; ``summary`` is the BatchSummary after the last one.

    The request body goes out from a thread of its own while the answer is
    read, as the daemon reads a batch's jobs only as earlier ones finish."""

    def __init__(self, socket: str, jobs: Iterable[JobLike], concurrency: Optional[int],
                 progress: Progress) -> None:
        self.summary: Optional[BatchSummary] = None
        self.progress = progress
        path = "/v1/batch"
        if concurrency is not None:
            path += f"?concurrency={int(concurrency)}"
        self._path = path
        self._sock = _connect(socket)
        self._writer_error: Optional[BaseException] = None
        self._closed = False
        head = (f"POST {path} HTTP/1.1\r\nHost: sandboxd\r\nUser-Agent: {_USER_AGENT}\r\n"
                f"Content-Type: {_NDJSON}\r\nAccept: {_NDJSON}\r\nTransfer-Encoding: chunked\r\n\r\n")
        try:
            self._sock.sendall(head.encode("ascii"))
        except OSError:
            self._sock.close()
            raise
        self._writer = threading.Thread(target=self._write, args=(iter(jobs),), daemon=True,
                                        name="sandboxd-batch-writer")
        self._writer.start()
        self._resp = http.client.HTTPResponse(self._sock, method="POST")
        try:
            self._resp.begin()
        except (OSError, http.client.HTTPException) as e:
            self.close()
            raise self._writer_error or ProtocolError(f"POST {path}: no answer: {e}") from None
        if self._resp.status != 200:
            err = _status_error(self._resp.status, self._resp.read(), self._resp.getheader("Retry-After"))
            self.close()
            raise err

    def _write(self, jobs: Iterator[JobLike]) -> None:
        try:
            for job in jobs:
                line = _encode_job(job) + b"\n"
                self._sock.sendall(b"%x\r\n%s\r\n" % (len(line), line))
            self._sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the answer tells why (an error status, a closed batch)
        except BaseException as e:  # a job that cannot be encoded, an error of the jobs' iterator
            self._writer_error = e
            try:
                self._sock.shutdown(_socket.SHUT_RDWR)
            except OSError:
                pass

    def __iter__(self) -> Iterator[BatchItem]:
        try:
            while True:
                try:
                    line = self._resp.readline()
                except (OSError, http.client.HTTPException) as e:
                    if self._writer_error is not None:
                        raise self._writer_error
                    raise ProtocolError(f"POST {self._path}: the answer broke off: {e}") from None
                if not line:
                    if self._writer_error is not None:
                        raise self._writer_error
                    raise ProtocolError(f"POST {self._path}: the answer ended before the summary")
                line = line.strip()
                if not line:
                    continue
                d = json.loads(line)
                if "summary" in d:
                    self.summary = from_wire(BatchSummary, d["summary"])
                    return
                if d.get("index") is None:
                    e = d.get("error") or {}
                    raise api_error(e.get("code", "internal"), e.get("message", f"a line that is neither a job's nor the summary: {line[:200]!r}"))
                item = BatchItem(index=d["index"], key=d.get("key"),
                                 result=from_wire(Result, d["result"]) if d.get("result") is not None else None,
                                 error=from_wire(APIErrorBody, d["error"]) if d.get("error") is not None else None)
                self.progress.update(item.verdict)
                yield item
        finally:
            self.close()

    def close(self) -> None:
        """Ends the batch; the daemon cancels the jobs still queued or running."""
        if self._closed:
            return
        self._closed = True
        self.progress.close()
        try:
            self._sock.shutdown(_socket.SHUT_RDWR)
        except OSError:
            pass
        self._resp.close()
        self._sock.close()

    def __enter__(self) -> "BatchStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
