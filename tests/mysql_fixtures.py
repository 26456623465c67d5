"""A real MariaDB/MySQL server for tests (a pytest plugin, listed in ``conftest.pytest_plugins``).

Fixtures
--------
``mysql_server_url`` (session scope)
    A SQLAlchemy URL string ``mysql+pymysql://user[:password]@host:port`` naming no database,
    for an account with admin rights (CREATE/DROP DATABASE, CREATE USER, GRANT). Use it for
    the staging side (cloning schemas, per-PR users) or to build your own database URLs.
    Where it comes from, first match wins:

    1. ``PULLRE_TEST_MYSQL_URL`` when set (any database in it is dropped from the URL), e.g.
       ``PULLRE_TEST_MYSQL_URL=mysql+pymysql://root@127.0.0.1:3306``;
    2. a throwaway server this test session starts itself from the installed binaries
       (``mariadb-install-db`` + ``mariadbd``, or MySQL's ``mysqld --initialize-insecure``,
       looked up on PATH and in /usr/sbin): temp datadir, own unix socket, a free TCP port on
       127.0.0.1, root without a password; stopped and its datadir removed at session end;
    3. otherwise every test that needs it FAILS (never skips) saying what to install.

``mysql_database_url`` (function scope)
    A fresh, empty database ``pullre_test_<hex>`` (utf8mb4) on that server, yielded as
    ``mysql+pymysql://.../pullre_test_<hex>?charset=utf8mb4`` and dropped after the test.

Tests that use either fixture are marked ``mysql`` automatically (so ``-m "not mysql"``
deselects them); mark them ``@pytest.mark.mysql`` anyway, for the reader.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pymysql
import pytest
from sqlalchemy import URL, create_engine, make_url, text
from sqlalchemy.pool import NullPool

ENV_VAR = "PULLRE_TEST_MYSQL_URL"
MYSQL_FIXTURES = frozenset({"mysql_server_url", "mysql_database_url"})
SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])
START_DEADLINE_S = 60.0
STOP_DEADLINE_S = 30.0
INSTALL_HINT = (
    "These tests need a MariaDB/MySQL server. Either install the server binaries so the test "
    "session can start a throwaway server itself (Debian/Ubuntu: `apt-get install "
    "mariadb-server`), or point the tests at a server with admin rights: "
    f"`export {ENV_VAR}=mysql+pymysql://root@127.0.0.1:3306`."
)


class MysqlUnavailable(Exception):
    """No server could be had; the message says why."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if MYSQL_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.mysql)


@pytest.fixture(scope="session")
def mysql_server_url() -> Iterator[str]:
    configured = os.environ.get(ENV_VAR, "").strip()
    if configured:
        url = _server_url_from_env(configured)
        _check_reachable(url)
        yield url.render_as_string(hide_password=False)
        return
    try:
        server = ThrowawayServer.start()
    except MysqlUnavailable as exc:
        problem = str(exc)
    else:
        problem = ""
    if problem:  # failed outside the except block, so the report shows no chained traceback
        pytest.fail(f"{problem}\n{INSTALL_HINT}", pytrace=False)
    try:
        yield server.url.render_as_string(hide_password=False)
    finally:
        server.stop()


@pytest.fixture
def mysql_database_url(mysql_server_url: str) -> Iterator[str]:
    name = f"pullre_test_{secrets.token_hex(6)}"
    server = make_url(mysql_server_url)
    engine = create_engine(server, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    try:
        url = server.set(database=name).update_query_dict({"charset": "utf8mb4"})
        yield url.render_as_string(hide_password=False)
    finally:
        with engine.connect() as connection:
            # A connection the test leaked would make DROP wait on its metadata lock forever.
            connection.execute(text("SET SESSION lock_wait_timeout = 30"))
            connection.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        engine.dispose()


def _server_url_from_env(value: str) -> URL:
    try:
        url = make_url(value)
    except Exception as exc:
        problem = f"{ENV_VAR}={value!r} is not a SQLAlchemy URL: {exc}"
    else:
        problem = ""
    if problem:
        pytest.fail(problem, pytrace=False)
    if url.get_backend_name() not in {"mysql", "mariadb"}:
        pytest.fail(
            f"{ENV_VAR} must be a mysql+pymysql:// URL, got {url!r}\n{INSTALL_HINT}", pytrace=False
        )
    return url.set(drivername=f"{url.get_backend_name()}+pymysql", database=None)


def _check_reachable(url: URL) -> None:
    engine = create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 10})
    problem = ""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        problem = str(getattr(exc, "orig", None) or exc)
    finally:
        engine.dispose()
    if problem:
        pytest.fail(
            f"{ENV_VAR} is set to {url!r} but that server cannot be used: {problem}\n"
            f"{INSTALL_HINT}",
            pytrace=False,
        )


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
        port = _free_port()
        argv = [
            server_bin,
            "--no-defaults",  # never read /etc/mysql: it names the system server's socket and dirs
            f"--datadir={workdir / 'data'}",
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
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C stops pytest, which then stops the server in order
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - no threads run yet; Linux-only safety net
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


def _initialize_datadir(server_bin: str, workdir: Path) -> None:
    datadir = workdir / "data"
    install_db = _find("mariadb-install-db") or _find("mysql_install_db")
    if install_db is not None and _is_mariadb(server_bin):
        argv = [
            install_db,
            "--no-defaults",
            f"--datadir={datadir}",
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
            *_user_option(),
        ]
    try:
        result = subprocess.run(  # noqa: PLW1510 - the return code is checked below
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
    version = subprocess.run(
        [server_bin, "--version"], capture_output=True, text=True, check=False, timeout=30
    )
    return "mariadb" in (version.stdout + version.stderr).lower()


def _user_option() -> list[str]:
    # mysqld refuses to run as root unless told to; as anyone else the option is not needed.
    return ["--user=root"] if os.geteuid() == 0 else []


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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
