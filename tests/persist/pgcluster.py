"""A throwaway PostgreSQL cluster for tests: Debian's server binaries, a unix socket only.

The cluster lives in a private directory under the system temp dir (not pytest's tmp_path:
the server must run as a non-root user -- PostgreSQL refuses root -- and pytest's base temp
directory is private to root).  It listens on no TCP port (``listen_addresses=''``), only on
a socket in its own directory, so clusters of tests running at once never meet.  Clients
connect as the superuser ``otrace`` without a password (``--auth=trust`` on that socket).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

PORT = 5432  # names the socket file only; every cluster has its own directory


def bindir() -> Path | None:
    """The newest installed PostgreSQL server's bin directory (Debian layout)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    return Path(found[-1]).parent if found else None


def _server_user() -> str | None:
    """A non-root account to run the server as, when we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root and no 'postgres' or 'nobody' account to run PostgreSQL")


class PgCluster:
    """One cluster: :meth:`start`, :meth:`stop`, :meth:`freeze`/:meth:`thaw`, :meth:`url`."""

    def __init__(self) -> None:
        b = bindir()
        if b is None:
            pytest.skip("PostgreSQL server binaries not installed (.ci/setup installs them)")
        self.bin = b
        self.user = _server_user()
        self.base = Path(tempfile.mkdtemp(prefix="otrace-pg-"))
        self.data = self.base / "data"
        self.log = self.base / "server.log"
        if self.user is not None:
            pw = pwd.getpwnam(self.user)
            os.chown(self.base, pw.pw_uid, pw.pw_gid)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "otrace",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--locale=C",
        )

    def _cmd(self, tool: str, *args: str) -> list[str]:
        cmd = [str(self.bin / tool), *args]
        if self.user is not None:
            gid = pwd.getpwnam(self.user).pw_gid
            cmd = ["setpriv", f"--reuid={self.user}", f"--regid={gid}", "--clear-groups", *cmd]
        return cmd

    def _run(self, tool: str, *args: str, timeout: float = 60) -> str:
        proc = subprocess.run(
            self._cmd(tool, *args), capture_output=True, text=True, timeout=timeout, cwd=self.base
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"{tool} failed ({proc.returncode}): {proc.stderr.strip()}\n{self.server_log()}"
            )
        return proc.stdout

    def server_log(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def start(self) -> None:
        opts = (
            f"-c listen_addresses='' -k {self.base} -p {PORT} -c fsync=off"
            " -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o", opts,
            "start", timeout=90,
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``immediate``: at once, as a crash would)."""
        if (self.data / "postmaster.pid").exists():
            self._run(
                "pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop", timeout=90
            )

    def _pids(self) -> list[int]:
        """The postmaster and its children."""
        main = int((self.data / "postmaster.pid").read_text().split()[0])
        out = subprocess.run(
            ["pgrep", "-P", str(main)], capture_output=True, text=True, timeout=10
        ).stdout
        return [main, *(int(p) for p in out.split())]

    def freeze(self) -> None:
        """Stop every server process (SIGSTOP): the database hangs, as an overloaded one."""
        for pid in self._pids():
            os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in self._pids():
            os.kill(pid, signal.SIGCONT)

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://otrace@/{db}?host={self.base}&port={PORT}"

    def sql(self, statement: str, db: str = "postgres") -> list[tuple]:
        import psycopg

        with psycopg.connect(self.url(db), autocommit=True, connect_timeout=10) as conn:
            cur = conn.execute(statement)  # type: ignore[call-overload]
            return cur.fetchall() if cur.description else []

    def create_db(self, name: str) -> str:
        self.sql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def destroy(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self.thaw()
        except Exception:
            pass
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)
