"""A private MariaDB/MySQL server started from the installed binaries, for tests and the sandbox.

Both need a staging server on machines that have the binaries but no running server; starting
one in a temp dir (own socket, free TCP port, root without a password, stopped and removed
afterwards) gives them the real thing without touching the system's server or its config.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pymysql
from sqlalchemy import URL

from pullre.sandbox.loopback import free_port

SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])
START_DEADLINE_S = 60.0
STOP_DEADLINE_S = 30.0


class MysqlUnavailable(Exception):
    """No server could be had; the message says why."""


@dataclass
class ThrowawayServer:
    """A private mysqld/mariadbd in a temp dir, reachable on 127.0.0.1 as root with no password."""

    workdir: Path
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    url: URL = field(init=False)

    def __post_init__(self) -> None:
        self.url = URL.create("mysql+pymysql", username="root", host="127.0.0.1", port=self.port)

    @property
    def socket_path(self) -> Path:
        return self.workdir / "mysqld.sock"

    @classmethod
    def start(cls) -> ThrowawayServer:
        server_bin = _find("mariadbd") or _find("mysqld")
        if server_bin is None:
            raise MysqlUnavailable("No mariadbd or mysqld found on PATH or in /usr/sbin.")
        # A short path: a unix socket path must fit in ~107 bytes.
        workdir = Path(tempfile.mkdtemp(prefix="pullre-mysql-", dir="/tmp"))
        try:
            _initialize_datadir(server_bin, workdir)
            last_error = MysqlUnavailable("the server did not start")
            for _attempt in range(3):  # another process may grab the free port before we bind it
                try:
                    return cls._launch(server_bin, workdir)
                except _PortTaken as exc:
                    last_error = MysqlUnavailable(str(exc))
            raise last_error
        except BaseException:
            shutil.rmtree(workdir, ignore_errors=True)
            raise

    @classmethod
    def _launch(cls, server_bin: str, workdir: Path) -> ThrowawayServer:
        log = workdir / "error.log"
        log.unlink(missing_ok=True)
        port = free_port()
        argv = [
            server_bin,
            "--no-defaults",  # never read /etc/mysql: it names the system server's socket and dirs
            f"--datadir={workdir / 'data'}",
            # Its own: a starting server deletes every #sql* file in its tmpdir, which in the
            # default /tmp are the live temporary tables of any other server on the machine.
            f"--tmpdir={_tmpdir(workdir)}",
            f"--socket={workdir / 'mysqld.sock'}",
            f"--pid-file={workdir / 'mysqld.pid'}",
            f"--log-error={log}",
            "--bind-address=127.0.0.1",
            f"--port={port}",
            "--skip-log-bin",
            "--innodb-flush-log-at-trx-commit=0",  # durability is pointless for a throwaway server
            "--character-set-server=utf8mb4",  # as MySQL 8 / Aurora; MariaDB 10.x says latin1
            *_user_option(),
        ]
        process = subprocess.Popen(  # noqa: S603 - argv of installed binaries, no shell
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C stops pytest, which then stops the server in order
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - started before any thread; Linux-only
        )
        server = cls(workdir=workdir, port=port, process=process, log=log)
        try:
            server._wait_until_ready()
        except BaseException:
            server._terminate()
            raise
        return server

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_DEADLINE_S
        while True:
            if self.process.poll() is not None:
                tail = _tail(self.log)
                if "already in use" in tail or "Bind on TCP/IP port" in tail:
                    raise _PortTaken(f"port {self.port} was taken:\n{tail}")
                raise MysqlUnavailable(
                    f"the server exited with status {self.process.returncode}:\n{tail}"
                )
            try:
                connection = pymysql.connect(
                    unix_socket=str(self.socket_path), user="root", connect_timeout=2
                )
            except pymysql.err.OperationalError:
                if time.monotonic() > deadline:
                    raise MysqlUnavailable(
                        f"server not ready after {START_DEADLINE_S:.0f}s:\n{_tail(self.log)}"
                    ) from None
                time.sleep(0.05)
                continue
            with connection, connection.cursor() as cursor:
                # MariaDB's install-db creates root@127.0.0.1 already; MySQL only root@localhost,
                # which TCP connections do not match.
                cursor.execute("CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'")
                cursor.execute(
                    "GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION"
                )
            _check_reachable_over_tcp(self.port)
            return

    def stop(self) -> None:
        self._terminate()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _terminate(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # a clean shutdown
            try:
                self.process.wait(STOP_DEADLINE_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class _PortTaken(MysqlUnavailable):
    pass


def _tmpdir(workdir: Path) -> Path:
    tmpdir = workdir / "tmp"
    tmpdir.mkdir(mode=0o700, exist_ok=True)  # the server runs as this user (see _user_option)
    return tmpdir


def _initialize_datadir(server_bin: str, workdir: Path) -> None:
    datadir = workdir / "data"
    install_db = _find("mariadb-install-db") or _find("mysql_install_db")
    if install_db is not None and _is_mariadb(server_bin):
        argv = [
            install_db,
            "--no-defaults",
            f"--datadir={datadir}",
            f"--tmpdir={_tmpdir(workdir)}",  # passed on to the bootstrap server
            "--auth-root-authentication-method=normal",  # root by password (empty), not by socket
            "--skip-test-db",
            *_user_option(),
        ]
    else:
        argv = [
            server_bin,
            "--no-defaults",
            "--initialize-insecure",  # root@localhost with an empty password
            f"--datadir={datadir}",
            f"--tmpdir={_tmpdir(workdir)}",
            *_user_option(),
        ]
    try:
        result = subprocess.run(  # noqa: S603, PLW1510 - our argv; return code checked below
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=START_DEADLINE_S,
        )
    except subprocess.TimeoutExpired as exc:
        raise MysqlUnavailable(f"{argv[0]} took longer than {START_DEADLINE_S:.0f}s") from exc
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()[-3000:]
        raise MysqlUnavailable(f"{' '.join(argv)} failed ({result.returncode}):\n{output}")


def _check_reachable_over_tcp(port: int) -> None:
    try:
        pymysql.connect(host="127.0.0.1", port=port, user="root", connect_timeout=5).close()
    except pymysql.err.MySQLError as exc:
        raise MysqlUnavailable(
            f"the server started but refuses root on port {port}: {exc}"
        ) from exc


def _find(name: str) -> str | None:
    return shutil.which(name, path=SEARCH_PATH)


def _is_mariadb(server_bin: str) -> bool:
    if Path(server_bin).name == "mariadbd":
        return True
    # On Debian, /usr/sbin/mysqld is MariaDB under its old name.
    version = subprocess.run(  # noqa: S603 - the installed binary, no shell
        [server_bin, "--version"], capture_output=True, text=True, check=False, timeout=30
    )
    return "mariadb" in (version.stdout + version.stderr).lower()


def _user_option() -> list[str]:
    # mysqld refuses to run as root unless told to; as anyone else the option is not needed.
    return ["--user=root"] if os.geteuid() == 0 else []


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


def _die_with_parent() -> None:
    """Let the kernel stop the server if the test process dies without running its teardown."""
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
