"""`python -m fxforge ARGS` without paying torch's import each time: a fork server.

A fresh ``python -m fxforge`` spends ~4 s importing torch and torchaudio. The server is one
long-lived interpreter (one per pytest worker, started on first use) that has imported them,
fxforge and its plugins once, and has run no torch op (so no thread pool exists to break in a
fork). Each call forks it: the child takes the caller's environment, argv and cwd, has stdin
on /dev/null and stdout/stderr in files, runs ``fxforge.cli.main(argv)`` exactly as
``python -m fxforge`` does, finishes as an interpreter exit would (non-daemon threads joined,
atexit handlers run, streams flushed) and exits with main's code. So each call is still its
own process: fresh global state, a real exit code, signals (see :meth:`ForkServer.start`).

A call runs as a fresh ``python -m fxforge`` instead (:class:`FreshCall`) when asked
(``fresh=True``: after a pip install the server's imports are stale), when its environment
differs from the server's in a variable read at interpreter or library start-up (PYTHONPATH,
thread and allocator settings, the terminal; OMP_NUM_THREADS / MKL_NUM_THREADS alone are
applied with ``torch.set_num_threads``), when the server is busy with another call (a test
running calls concurrently), and for every call under FXFORGE_TESTS_SUBPROCESS=1.

:func:`run` is conftest's ``run_cli``; :func:`spawn` starts a call without waiting (to signal it).
"""
from __future__ import annotations

import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BASE_ENV = {"COLUMNS": "200", "NO_COLOR": "1"}

SERVER = r'''
import json, os, signal, sys, traceback
REPLY = os.dup(1)  # the replies' pipe; whatever an import prints goes to the log instead
os.dup2(2, 1)
import importlib.metadata as md
import importlib, pkgutil
import torch, torch._dynamo, torchaudio, soundfile  # the slow imports, paid once (an optimizer imports _dynamo)
import fxforge, fxforge.cli

for mod in pkgutil.walk_packages(fxforge.__path__, "fxforge."):  # plots (matplotlib, scipy.signal), report, ...
    if not mod.name.endswith("__main__"):
        try:
            importlib.import_module(mod.name)
        except Exception:
            pass
for ep in md.entry_points(group="fxforge"):  # imported only: each call builds its registry afresh
    try:
        ep.load()
    except Exception:
        pass
MAIN = os.path.join(os.path.dirname(fxforge.__file__), "__main__.py")
child = None
expired = False


def expire(signum, frame):
    global expired
    if child is not None:
        expired = True
        os.kill(child, signal.SIGKILL)


def reply(obj):
    os.write(REPLY, (json.dumps(obj) + "\n").encode())


def run(req):
    """In the forked child: become `python -m fxforge ARGS`; never returns."""
    code = 1
    try:
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        os.close(REPLY)
        os.chdir(req["cwd"])
        os.environ.clear()
        os.environ.update(req["env"])
        if req["threads"]:
            torch.set_num_threads(req["threads"])
        for fd, path, flags in ((0, os.devnull, os.O_RDONLY), (1, req["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
                                (2, req["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)):
            new = os.open(path, flags, 0o644)
            os.dup2(new, fd)
            os.close(new)
        sys.argv = [MAIN, *req["args"]]
        try:
            code = fxforge.cli.main(req["args"])
        except SystemExit as exc:  # as the interpreter reads sys.exit(...)
            if exc.code is None or isinstance(exc.code, int):
                code = exc.code or 0
            else:
                print(exc.code, file=sys.stderr)
                code = 1
        except KeyboardInterrupt:  # uncaught: the interpreter dies of SIGINT
            traceback.print_exc()
            code = -signal.SIGINT
        except BaseException:
            traceback.print_exc()
            code = 1
        import threading, atexit
        threading._shutdown()
        atexit._run_exitfuncs()
    except BaseException:
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        if code == -signal.SIGINT:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
        os._exit(code if isinstance(code, int) and 0 <= code < 256 else 1)


signal.signal(signal.SIGALRM, expire)
reply({"ready": os.getpid()})
for line in sys.stdin:
    req = json.loads(line)
    pid = os.fork()
    if pid == 0:
        run(req)
    child, expired = pid, False
    reply({"pid": pid})
    signal.alarm(req["timeout"])
    _, status = os.waitpid(pid, 0)
    signal.alarm(0)
    child = None
    reply({"returncode": os.waitstatus_to_exitcode(status), "timed_out": expired})
'''

# What a started interpreter has already read: its path, thread pools, allocators, the
# terminal. A call whose environment changes one of these needs a fresh process.
STARTUP = re.compile(r"PYTHON.*|LD_.*|OMP_.*|MKL_.*|KMP_.*|GOMP_.*|OPENBLAS_.*|NUMEXPR_.*|MALLOC_.*|TORCH.*|PYTORCH.*"
                     r"|CUDA.*|COLUMNS|LINES|NO_COLOR|FORCE_COLOR|TERM|COLORTERM|TTY_.*|JUPYTER_.*|LANG|LC_.*|TMPDIR|TZ")
THREADS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def cli_env(env: dict | None) -> dict:
    """The environment `fxforge` runs in: the caller's, wide uncoloured output, the overrides."""
    return {**os.environ, **BASE_ENV, **(env or {})}


class ServerDied(RuntimeError):
    pass


class ForkServer:
    """`python -m fxforge ARGS` in processes forked from one that has imported it."""

    def __init__(self):
        self.scratch = Path(tempfile.mkdtemp(prefix="fxforge-cli-"))
        self.env = cli_env(None)
        self.lock = threading.Lock()
        self.buf = b""
        self.log = self.scratch / "server.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-c", SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=log, env=self.env, bufsize=0, cwd=self.scratch)
        self.ready = False

    # -- the pipe
    def _line(self, timeout: float | None = None) -> dict | None:
        """The server's next reply; None if none came within timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not select.select([self.proc.stdout], [], [], left)[0]:
                return None
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                tail = self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""
                raise ServerDied(f"the fork server died (exit {self.proc.wait()}):\n{tail}")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def serves(self, env: dict) -> tuple[bool, int]:
        """Whether a call in env can be forked from the server, and the torch threads to set."""
        threads = 0
        for key in env.keys() | self.env.keys():
            if env.get(key) == self.env.get(key) or not STARTUP.fullmatch(key):
                continue
            if key in THREADS and str(env.get(key, "")).isdigit() and int(env[key]) > 0:
                threads = min(threads or 1 << 30, int(env[key]))
                continue
            return False, 0
        return True, threads

    # -- one call
    def start(self, args, cwd=None, env: dict | None = None, timeout: int = 600, threads: int = 0) -> "Call":
        """Fork a call; returns at once with its pid (signal it with os.kill)."""
        if not self.ready:
            self._line()  # the imports done
            self.ready = True
        call = Call(self, [str(a) for a in args], timeout)
        req = {"args": call.args, "cwd": os.path.abspath(cwd if cwd is not None else os.getcwd()),
               "env": env if env is not None else cli_env(None), "timeout": max(1, int(round(timeout))),
               "threads": threads, "stdout": str(self.scratch / "stdout"), "stderr": str(self.scratch / "stderr")}
        self.proc.stdin.write((json.dumps(req) + "\n").encode())
        call.pid = self._line()["pid"]
        return call

    def close(self) -> None:
        if self.alive():
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.scratch, ignore_errors=True)


class Call:
    """One forked `fxforge` call: .pid while it runs, .wait() for its CompletedProcess."""

    def __init__(self, server: ForkServer, args: list, timeout: float):
        self.server, self.args, self.timeout, self.pid = server, args, timeout, None
        self.result = None

    def done(self) -> bool:
        """Whether it has exited (without waiting)."""
        if self.result is None and (b"\n" in self.server.buf
                                    or select.select([self.server.proc.stdout], [], [], 0)[0]):
            self._finish()
        return self.result is not None

    def send_signal(self, sig: int) -> None:
        if not self.done():  # (not exited: the server has not reaped it, so the pid is still its)
            os.kill(self.pid, sig)

    def wait(self) -> subprocess.CompletedProcess:
        if self.result is None:
            self._finish()
        return self.result

    def _finish(self) -> None:
        try:
            reply = self.server._line()
            out, err = (self.server.scratch / name for name in ("stdout", "stderr"))
            read = lambda p: p.read_text(errors="replace") if p.exists() else ""  # noqa: E731
            stdout, stderr = read(out), read(err)
        finally:
            self.server.lock.release()
        cmd = [sys.executable, "-m", "fxforge", *self.args]
        self.result = subprocess.CompletedProcess(cmd, reply["returncode"], stdout, stderr)
        if reply["timed_out"]:
            raise subprocess.TimeoutExpired(cmd, self.timeout, output=stdout, stderr=stderr)


_server: ForkServer | None = None


def server() -> ForkServer:
    """This process's fork server, started on first use (and again if it died)."""
    global _server
    if _server is None or not _server.alive():
        if _server is not None:
            _server.close()
        _server = ForkServer()
    return _server


def close() -> None:
    global _server
    if _server is not None:
        _server.close()
        _server = None


def use_subprocess() -> bool:
    return bool(os.environ.get("FXFORGE_TESTS_SUBPROCESS"))


class FreshCall:
    """One `python -m fxforge ARGS` process, with the same face as a forked Call."""

    def __init__(self, args, cwd=None, env=None, timeout=600):
        self.timeout = timeout
        self.proc = subprocess.Popen([sys.executable, "-m", "fxforge", *map(str, args)], cwd=cwd, env=cli_env(env),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.pid = self.proc.pid
        self.result = None

    def done(self) -> bool:
        return self.proc.poll() is not None

    def send_signal(self, sig: int) -> None:
        self.proc.send_signal(sig)  # (a no-op once it has exited)

    def wait(self) -> subprocess.CompletedProcess:
        """As subprocess.run: past the timeout, killed and TimeoutExpired raised."""
        if self.result is None:
            try:
                out, err = self.proc.communicate(timeout=self.timeout)
            except subprocess.TimeoutExpired as exc:
                self.proc.kill()
                exc.output, exc.stderr = self.proc.communicate()
                raise
            self.result = subprocess.CompletedProcess(self.proc.args, self.proc.returncode, out, err)
        return self.result


def spawn(args, cwd=None, env=None, timeout=600, fresh=False):
    """Start `fxforge ARGS` (a forked Call, or a FreshCall where it must be a new process);
    returns at once: .pid, .done(), .send_signal(sig), .wait() -> CompletedProcess."""
    if not (fresh or use_subprocess()):
        full = cli_env(env)
        srv = server()
        ok, threads = srv.serves(full)
        if ok and srv.lock.acquire(blocking=False):  # (busy: another call of this process is running)
            try:
                return srv.start(args, cwd=cwd, env=full, timeout=timeout, threads=threads)
            except BaseException:
                srv.lock.release()
                raise
    return FreshCall(args, cwd=cwd, env=env, timeout=timeout)


def run(*args, cwd=None, env=None, timeout=600, fresh=False) -> subprocess.CompletedProcess:
    """`fxforge ARGS` exactly as a user runs it, forked from the server where it can be."""
    return spawn(args, cwd=cwd, env=env, timeout=timeout, fresh=fresh).wait()
