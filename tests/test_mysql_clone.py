"""The per-PR schema on a real MariaDB/MySQL: clone fidelity, the PR user's reach, drop, failures.

Every test makes its own uniquely named schemas (``pullre_src_<hex>`` sources, ``pr_<random>_<n>``
targets) and removes them in ``finally``, so parallel runs on one server do not collide.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest
from sqlalchemy import make_url

from pullre.config import StagingMysqlSettings
from pullre.staging_db.connection import ServerAddress, describe
from pullre.staging_db.database import PyMysqlStagingDatabase, make_staging_database
from pullre.staging_db.definitions import retarget
from pullre.staging_db.names import (
    InvalidName,
    is_owned,
    quote_identifier,
    schema_name,
    user_name,
)
from pullre.staging_db.port import (
    CloneFailed,
    CloneResult,
    Credentials,
    Leftover,
    SourceMissing,
    StagingDatabaseError,
    StagingUnavailable,
)

BIG_ROWS = 100_000
DIGITS = "(" + " UNION ALL ".join(f"SELECT {d} AS d" for d in range(10)) + ")"


def admin_connect(server_url: str) -> pymysql.Connection[Any]:
    url = make_url(server_url)
    return pymysql.connect(
        host=url.host,
        port=url.port or 3306,
        user=url.username,
        password=url.password or "",
        charset="utf8mb4",
        autocommit=True,
    )


def user_connect(credentials: Credentials) -> pymysql.Connection[Any]:
    return pymysql.connect(
        host=credentials.host,
        port=credentials.port,
        user=credentials.user,
        password=credentials.password,
        database=credentials.database,
        charset="utf8mb4",
        autocommit=True,
    )


def rows(conn: pymysql.Connection[Any], sql: str, args: Any = None) -> list[tuple[Any, ...]]:
    with conn.cursor() as cursor:
        cursor.execute(sql, args)
        return [tuple(row) for row in cursor.fetchall()]


def run(conn: pymysql.Connection[Any], *statements: str) -> None:
    with conn.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def new_target() -> str:
    return schema_name(900_000_000 + secrets.randbelow(99_999_999), secrets.randbelow(99_999) + 1)


def new_source() -> str:
    return f"pullre_src_{secrets.token_hex(5)}"


def numbers(count: int) -> str:
    """A server-side 0..count-1 sequence: cross-joined digits, on MariaDB and MySQL alike."""
    width = len(str(count - 1))
    joins = ", ".join(f"{DIGITS} AS d{i}" for i in range(width))
    value = " + ".join(f"d{i}.d * {10**i}" for i in range(width))
    return f"SELECT {value} AS n FROM {joins} HAVING n < {count}"


def rich_source_statements(src: str) -> list[str]:
    q = quote_identifier(src)
    return [
        f"CREATE DATABASE {q} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
        f"USE {q}",
        "CREATE TABLE customers (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(100) NOT NULL,"
        " email VARCHAR(190) NOT NULL, country CHAR(2) NOT NULL DEFAULT 'NL',"
        " UNIQUE KEY uq_email (email), KEY ix_country_name (country, name)) ENGINE=InnoDB",
        "CREATE TABLE orders (id BIGINT AUTO_INCREMENT PRIMARY KEY, customer_id INT NOT NULL,"
        " status ENUM('new','paid','shipped') NOT NULL DEFAULT 'new', total DECIMAL(10,2) NOT NULL,"
        " total_cents BIGINT AS (total * 100) STORED,"
        " note VARCHAR(50) DEFAULT 'hidden' INVISIBLE,"
        " KEY ix_customer_status (customer_id, status),"
        " CONSTRAINT fk_orders_customer FOREIGN KEY (customer_id) REFERENCES customers (id)"
        " ON DELETE CASCADE) ENGINE=InnoDB",
        "CREATE TABLE order_audit (id INT AUTO_INCREMENT PRIMARY KEY, order_id BIGINT NOT NULL,"
        " action VARCHAR(20) NOT NULL, KEY ix_order (order_id),"
        " CONSTRAINT fk_audit_order FOREIGN KEY (order_id) REFERENCES orders (id)"
        " ON DELETE CASCADE) ENGINE=InnoDB",
        "CREATE TABLE legacy_empty (code VARCHAR(10) NOT NULL PRIMARY KEY,"
        " label VARCHAR(50) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin)"
        " ENGINE=InnoDB DEFAULT CHARSET=latin1 COLLATE=latin1_swedish_ci",
        "CREATE TABLE big (id INT PRIMARY KEY, bucket SMALLINT NOT NULL,"
        " payload VARCHAR(40) NOT NULL, KEY ix_bucket (bucket)) ENGINE=InnoDB",
        "INSERT INTO customers (name, email, country) VALUES"
        " ('Zoë 🚀', 'zoe@example.com', 'NL'), ('李雷 🐉', 'li@example.com', 'CN')",
        "INSERT INTO customers (name, email, country)"
        " SELECT CONCAT('customer ', n), CONCAT('c', n, '@example.com'), 'DE'"
        f" FROM ({numbers(60)}) s",
        "DELETE FROM customers WHERE id IN (5, 6, 7)",
        "ALTER TABLE customers AUTO_INCREMENT = 1000",
        "INSERT INTO orders (customer_id, status, total, note)"
        " SELECT c.id, ELT(1 + s.n % 3, 'new', 'paid', 'shipped'), 10 + s.n * 7.25,"
        f" CONCAT('note ', s.n) FROM customers c JOIN ({numbers(8)}) s",
        "INSERT INTO order_audit (order_id, action) SELECT id, 'imported' FROM orders",
        "INSERT INTO big (id, bucket, payload)"
        f" SELECT n, n % 97, SHA1(n) FROM ({numbers(BIG_ROWS)}) s",
        # A function reads its own schema by its qualified name: the clone must point it home.
        "CREATE FUNCTION order_count(cust INT) RETURNS INT READS SQL DATA"
        f" RETURN (SELECT COUNT(*) FROM {q}.orders WHERE customer_id = cust)",
        "CREATE PROCEDURE add_order(IN cust INT, IN amount DECIMAL(10,2)) MODIFIES SQL DATA"
        " BEGIN INSERT INTO orders (customer_id, total) VALUES (cust, amount); END",
        # Named so that name order is the wrong creation order: aa_ is built on zz_.
        "CREATE VIEW zz_customer_totals AS SELECT c.id, c.name, COUNT(o.id) AS orders,"
        " COALESCE(SUM(o.total), 0) AS spent FROM customers c"
        " LEFT JOIN orders o ON o.customer_id = c.id GROUP BY c.id, c.name",
        "CREATE SQL SECURITY INVOKER VIEW aa_top_customers AS"
        " SELECT id, name, spent, order_count(id) AS n FROM zz_customer_totals WHERE spent > 200",
        "CREATE TRIGGER customers_bi BEFORE INSERT ON customers FOR EACH ROW"
        " SET NEW.email = LOWER(NEW.email)",
        "CREATE TRIGGER orders_ai AFTER INSERT ON orders FOR EACH ROW"
        " INSERT INTO order_audit (order_id, action) VALUES (NEW.id, 'created')",
        "CREATE EVENT purge_audit ON SCHEDULE EVERY 1 DAY DISABLE"
        " DO DELETE FROM order_audit WHERE id < 0",
    ]


@pytest.fixture
def staging(mysql_server_url: str) -> PyMysqlStagingDatabase:
    return PyMysqlStagingDatabase.from_url(mysql_server_url)


@pytest.fixture
def admin(mysql_server_url: str) -> Iterator[pymysql.Connection[Any]]:
    conn = admin_connect(mysql_server_url)
    yield conn
    conn.close()


@pytest.fixture
def cleanup(mysql_server_url: str) -> Iterator[list[str]]:
    """Schemas to drop after the test (with their PR users), whatever happened."""
    names: list[str] = []
    yield names
    staging = PyMysqlStagingDatabase.from_url(mysql_server_url)
    conn = admin_connect(mysql_server_url)
    try:
        for name in names:
            if is_owned(name, staging.schema_prefix):
                staging.drop(name)
            else:  # a source: pullre's adapter never drops what it did not name
                run(conn, f"DROP DATABASE IF EXISTS {quote_identifier(name)}")
    finally:
        conn.close()


@pytest.fixture(scope="module")
def rich_source(mysql_server_url: str) -> Iterator[str]:
    src = new_source()
    conn = admin_connect(mysql_server_url)
    try:
        run(conn, *rich_source_statements(src))
        yield src
    finally:
        run(conn, f"DROP DATABASE IF EXISTS {quote_identifier(src)}")
        conn.close()


def tables_of(conn: pymysql.Connection[Any], schema: str) -> list[str]:
    return [
        name
        for (name,) in rows(
            conn,
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s"
            " AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
            (schema,),
        )
    ]


def table_fingerprint(conn: pymysql.Connection[Any], schema: str) -> dict[str, tuple[Any, ...]]:
    """Per table: SHOW CREATE TABLE (indexes, FKs, charset, AUTO_INCREMENT), count, checksum.

    MariaDB 10.11's CHECKSUM TABLE differs between identical copies of a table that has a
    generated column (measured: ``CREATE TABLE b LIKE a; INSERT INTO b SELECT ...`` gives another
    sum), so such tables are compared by a digest of every column's value instead.
    """
    result = {}
    for table in tables_of(conn, schema):
        name = f"{quote_identifier(schema)}.{quote_identifier(table)}"
        create = rows(conn, f"SHOW CREATE TABLE {name}")[0][1]
        (count,) = rows(conn, f"SELECT COUNT(*) FROM {name}")[0]
        columns = rows(
            conn,
            "SELECT COLUMN_NAME, EXTRA FROM information_schema.COLUMNS"
            " WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
            (schema, table),
        )
        if any("GENERATED" in extra and "DEFAULT_GENERATED" not in extra for _, extra in columns):
            listed = ", ".join(f"QUOTE({quote_identifier(column)})" for column, _ in columns)
            digest = rows(conn, f"SELECT SUM(CRC32(CONCAT_WS(',', {listed}))) FROM {name}")[0][0]
            result[table] = (create, count, "digest", digest)
        else:
            result[table] = (create, count, rows(conn, f"CHECKSUM TABLE {name}")[0][1])
    return result


def definitions(conn: pymysql.Connection[Any], schema: str) -> dict[str, list[tuple[Any, ...]]]:
    return {
        "views": rows(
            conn,
            "SELECT TABLE_NAME, VIEW_DEFINITION, CHECK_OPTION, SECURITY_TYPE"
            " FROM information_schema.VIEWS WHERE TABLE_SCHEMA = %s ORDER BY TABLE_NAME",
            (schema,),
        ),
        "triggers": rows(
            conn,
            "SELECT TRIGGER_NAME, EVENT_MANIPULATION, EVENT_OBJECT_TABLE, ACTION_ORDER,"
            " ACTION_TIMING, ACTION_STATEMENT, SQL_MODE"
            " FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s ORDER BY TRIGGER_NAME",
            (schema,),
        ),
        "routines": rows(
            conn,
            "SELECT ROUTINE_NAME, ROUTINE_TYPE, DTD_IDENTIFIER, ROUTINE_DEFINITION,"
            " IS_DETERMINISTIC, SQL_DATA_ACCESS, SECURITY_TYPE, SQL_MODE"
            " FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = %s ORDER BY ROUTINE_NAME",
            (schema,),
        ),
        "events": rows(
            conn,
            "SELECT EVENT_NAME, EVENT_DEFINITION, INTERVAL_VALUE, INTERVAL_FIELD, STATUS"
            " FROM information_schema.EVENTS WHERE EVENT_SCHEMA = %s ORDER BY EVENT_NAME",
            (schema,),
        ),
    }


def definers(conn: pymysql.Connection[Any], schema: str) -> set[str]:
    found = set()
    for sql in (
        "SELECT DEFINER FROM information_schema.VIEWS WHERE TABLE_SCHEMA = %s",
        "SELECT DEFINER FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s",
        "SELECT DEFINER FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = %s",
        "SELECT DEFINER FROM information_schema.EVENTS WHERE EVENT_SCHEMA = %s",
    ):
        found.update(definer for (definer,) in rows(conn, sql, (schema,)))
    return found


def swap(value: Any, source: str, target: str) -> Any:
    if isinstance(value, str):
        return value.replace(source, target)
    if isinstance(value, (list, tuple)):
        return type(value)(swap(item, source, target) for item in value)
    if isinstance(value, dict):
        return {key: swap(item, source, target) for key, item in value.items()}
    return value


# -- clone fidelity ---------------------------------------------------------------------------


def test_clone_copies_tables_rows_and_every_definition(
    staging: PyMysqlStagingDatabase,
    admin: pymysql.Connection[Any],
    rich_source: str,
    cleanup: list[str],
) -> None:
    target = new_target()
    cleanup.append(target)
    before = table_fingerprint(admin, rich_source)

    result = staging.clone(rich_source, target)
    staging.create_user(target)

    assert isinstance(result, CloneResult)
    assert (result.tables, result.views, result.triggers, result.routines, result.events) == (
        5,
        2,
        2,
        2,
        1,
    )
    expected_rows = sum(fingerprint[1] for fingerprint in before.values())
    assert result.rows == expected_rows
    assert before["big"][1] == BIG_ROWS
    copied = table_fingerprint(admin, target)
    assert copied == before  # same DDL text (keys, FKs, charsets, AUTO_INCREMENT), counts, sums
    assert "AUTO_INCREMENT=1000" in copied["customers"][0]
    assert "CONSTRAINT `fk_orders_customer` FOREIGN KEY" in copied["orders"][0]
    assert "DEFAULT CHARSET=latin1" in copied["legacy_empty"][0]
    assert copied["legacy_empty"][1] == 0
    assert table_fingerprint(admin, rich_source) == before  # the source is untouched

    schema_charsets = rows(
        admin,
        "SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME"
        " FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN (%s, %s) ORDER BY SCHEMA_NAME = %s",
        (rich_source, target, target),
    )
    assert [row[1:] for row in schema_charsets] == [("utf8mb4", "utf8mb4_unicode_ci")] * 2
    emoji = "SELECT name FROM {}.customers WHERE id <= 2 ORDER BY id"
    assert rows(admin, emoji.format(quote_identifier(target))) == [("Zoë 🚀",), ("李雷 🐉",)]
    invisible = "SELECT note FROM {}.orders ORDER BY id LIMIT 1"
    assert rows(admin, invisible.format(quote_identifier(target))) == [("note 0",)]

    assert definitions(admin, target) == swap(definitions(admin, rich_source), rich_source, target)
    assert f"`{target}`" not in str(definitions(admin, rich_source))
    assert definers(admin, target) == {f"{user_name(target)}@%"}
    view_on_view = "SELECT * FROM {}.aa_top_customers ORDER BY id"
    source_top = rows(admin, view_on_view.format(quote_identifier(rich_source)))
    assert source_top
    assert rows(admin, view_on_view.format(quote_identifier(target))) == source_top


def test_pr_user_works_in_its_schema_and_nowhere_else(
    staging: PyMysqlStagingDatabase,
    admin: pymysql.Connection[Any],
    rich_source: str,
    cleanup: list[str],
) -> None:
    target, other = new_target(), new_target()
    cleanup.extend([target, other])
    staging.clone(rich_source, target)
    run(admin, f"CREATE DATABASE {quote_identifier(other)}")
    run(admin, f"CREATE TABLE {quote_identifier(other)}.secret (id INT)")
    credentials = staging.create_user(target)
    assert (credentials.user, credentials.database) == (user_name(target), target)
    assert credentials.password not in repr(credentials)
    (orders_before,) = rows(admin, f"SELECT COUNT(*) FROM {quote_identifier(rich_source)}.orders")[
        0
    ]

    conn = user_connect(credentials)
    try:
        run(conn, "INSERT INTO customers (name, email) VALUES ('New', 'NEW@EXAMPLE.COM')")
        assert rows(conn, "SELECT email FROM customers WHERE name = 'New'") == [
            ("new@example.com",)
        ]
        run(conn, "CALL add_order(1, 999.00)")
        assert rows(conn, "SELECT action FROM order_audit ORDER BY id DESC LIMIT 1") == [
            ("created",)
        ]
        # The function counts the clone's orders (its body was pointed at the target).
        assert rows(conn, "SELECT order_count(1)") == [(9,)]
        assert rows(admin, f"SELECT {quote_identifier(rich_source)}.order_count(1)") == [(8,)]
        assert rows(conn, "SELECT COUNT(*) FROM aa_top_customers WHERE id = 1") == [(1,)]
        run(conn, "CREATE TABLE scratch (id INT PRIMARY KEY)", "DROP TABLE scratch")

        assert {name for (name,) in rows(conn, "SHOW DATABASES")} == {"information_schema", target}
        for forbidden in (
            f"SELECT * FROM {quote_identifier(rich_source)}.orders",
            f"SELECT * FROM {quote_identifier(other)}.secret",
            f"INSERT INTO {quote_identifier(other)}.secret VALUES (1)",
            f"DROP DATABASE {quote_identifier(other)}",
            "CREATE DATABASE pullre_should_not_exist",
            "CREATE USER 'pullre_intruder'@'%'",
        ):
            with pytest.raises(pymysql.err.OperationalError) as denied:
                run(conn, forbidden)
            assert denied.value.args[0] in {1044, 1142, 1227}, forbidden
    finally:
        conn.close()
    assert rows(admin, f"SELECT COUNT(*) FROM {quote_identifier(rich_source)}.orders") == [
        (orders_before,)
    ]
    grants = rows(admin, f"SHOW GRANTS FOR '{credentials.user}'@'%'")
    assert len(grants) == 2
    escaped = target.replace("_", "\\_")  # `_` would be a wildcard in a grant
    assert f"GRANT ALL PRIVILEGES ON `{escaped}`.*" in grants[1][0]

    rotated = staging.create_user(target)  # idempotent: a new password, the old one stops working
    assert rotated.password != credentials.password
    with pytest.raises(pymysql.err.OperationalError) as refused:
        user_connect(credentials)
    assert refused.value.args[0] == 1045
    user_connect(rotated).close()

    chosen = staging.create_user(target, password=f"derived-{secrets.token_hex(12)}")
    user_connect(chosen).close()
    assert chosen.url.startswith(f"mysql+pymysql://{chosen.user}:derived-")
    with pytest.raises(StagingDatabaseError, match="at least 16"):
        staging.create_user(target, password="short")
    user_connect(chosen).close()  # a refused password changes nothing


def test_drop_removes_schema_user_and_sessions_and_is_idempotent(
    staging: PyMysqlStagingDatabase, admin: pymysql.Connection[Any], cleanup: list[str]
) -> None:
    source, target = new_source(), new_target()
    cleanup.extend([source, target])
    run(admin, f"CREATE DATABASE {quote_identifier(source)}")
    run(admin, f"CREATE TABLE {quote_identifier(source)}.t (id INT PRIMARY KEY)")
    staging.clone(source, target)
    credentials = staging.create_user(target)
    assert staging.exists(target)
    assert {Leftover("schema", target), Leftover("user", target)} <= set(staging.leftovers())
    # A live session in the middle of a transaction must not make the drop wait on its locks.
    app = user_connect(credentials)
    run(app, "BEGIN", "INSERT INTO t VALUES (1)")

    started = time.monotonic()
    staging.drop(target)
    assert time.monotonic() - started < 10

    assert not staging.exists(target)
    names = {leftover.name for leftover in staging.leftovers()}
    assert target not in names
    assert rows(admin, "SELECT COUNT(*) FROM mysql.user WHERE User = %s", (target,)) == [(0,)]
    with pytest.raises(pymysql.err.OperationalError):
        user_connect(credentials)
    staging.drop(target)  # already gone: no error
    assert staging.exists(source)
    with pytest.raises((pymysql.err.OperationalError, pymysql.err.InterfaceError)):
        run(app, "SELECT 1")  # its session was ended
    app.close()


def test_reset_brings_the_source_data_back_and_keeps_the_credentials(
    staging: PyMysqlStagingDatabase, admin: pymysql.Connection[Any], cleanup: list[str]
) -> None:
    source, target = new_source(), new_target()
    cleanup.extend([source, target])
    run(admin, f"CREATE DATABASE {quote_identifier(source)}")
    run(admin, f"CREATE TABLE {quote_identifier(source)}.t (id INT PRIMARY KEY)")
    run(admin, f"INSERT INTO {quote_identifier(source)}.t VALUES (1), (2), (3)")
    staging.clone(source, target)
    credentials = staging.create_user(target)
    conn = user_connect(credentials)
    run(conn, "DELETE FROM t", "CREATE TABLE extra (id INT)")
    conn.close()

    result = staging.reset(source, target)

    assert result.rows == 3
    conn = user_connect(credentials)
    try:
        assert rows(conn, "SELECT id FROM t ORDER BY id") == [(1,), (2,), (3,)]
        assert rows(conn, "SHOW TABLES") == [("t",)]
    finally:
        conn.close()


# -- failures ---------------------------------------------------------------------------------


def test_missing_source_is_named_and_leaves_the_target_alone(
    staging: PyMysqlStagingDatabase, admin: pymysql.Connection[Any], cleanup: list[str]
) -> None:
    missing, target = new_source(), new_target()
    cleanup.append(target)
    with pytest.raises(SourceMissing, match=missing) as raised:
        staging.clone(missing, target)
    assert raised.value.schema == missing
    assert not staging.exists(target)

    run(admin, f"CREATE DATABASE {quote_identifier(target)}")
    with pytest.raises(SourceMissing):
        staging.reset(missing, target)
    assert staging.exists(target)  # a reset from a vanished source keeps the PR's data


def test_connection_killed_mid_copy_drops_the_target_and_a_retry_succeeds(
    staging: PyMysqlStagingDatabase,
    admin: pymysql.Connection[Any],
    mysql_server_url: str,
    cleanup: list[str],
) -> None:
    source, target = new_source(), new_target()
    cleanup.extend([source, target])
    q = quote_identifier(source)
    run(
        admin,
        f"CREATE DATABASE {q}",
        f"CREATE TABLE {q}.plain (id INT PRIMARY KEY)",
        f"INSERT INTO {q}.plain {numbers(1000)}",
        f"CREATE TABLE {q}.locked (id INT PRIMARY KEY)",
        f"INSERT INTO {q}.locked VALUES (1), (2)",
    )
    locker = admin_connect(mysql_server_url)
    run(locker, f"LOCK TABLES {q}.locked WRITE")  # the copy of `locked` now waits, found below
    outcome: list[BaseException | CloneResult] = []
    clone = threading.Thread(target=lambda: _capture(outcome, staging.clone, source, target))
    clone.start()
    try:
        copier = _wait_for_query(admin, f"INSERT INTO `{target}`.`locked`%")
        run(admin, f"KILL {copier}")
    finally:
        run(locker, "UNLOCK TABLES")
        locker.close()
        clone.join(60)

    assert len(outcome) == 1
    failure = outcome[0]
    assert isinstance(failure, CloneFailed)
    assert "copying rows of locked" in str(failure)
    assert f"the partial schema {target} was dropped" in str(failure)
    assert not staging.exists(target)
    assert target not in {leftover.name for leftover in staging.leftovers()}

    result = staging.clone(source, target)
    assert result.rows == 1002
    assert table_fingerprint(admin, target) == table_fingerprint(admin, source)


def test_a_view_that_cannot_be_made_fails_the_clone_cleanly(
    staging: PyMysqlStagingDatabase, admin: pymysql.Connection[Any], cleanup: list[str]
) -> None:
    source, target = new_source(), new_target()
    cleanup.extend([source, target])
    q = quote_identifier(source)
    run(
        admin,
        f"CREATE DATABASE {q}",
        f"CREATE TABLE {q}.kept (id INT PRIMARY KEY)",
        f"INSERT INTO {q}.kept VALUES (1)",
        f"CREATE TABLE {q}.gone (id INT PRIMARY KEY)",
        f"CREATE VIEW {q}.broken AS SELECT id FROM {q}.gone",
        f"DROP TABLE {q}.gone",  # the view now names a table that does not exist
    )
    with pytest.raises(CloneFailed, match="creating view broken") as raised:
        staging.clone(source, target)
    assert raised.value.target == target
    assert not staging.exists(target)

    run(admin, f"CREATE TABLE {q}.gone (id INT PRIMARY KEY)")
    assert staging.clone(source, target).views == 1
    assert staging.exists(target)


def test_errors_never_show_the_admin_password(mysql_server_url: str) -> None:
    url = make_url(mysql_server_url).set(password="hunter2-not-the-password")
    staging = PyMysqlStagingDatabase.from_url(url.render_as_string(hide_password=False))
    assert "hunter2" not in repr(staging)
    with pytest.raises(StagingUnavailable) as raised:
        staging.exists("pr_1_1")
    assert "hunter2" not in str(raised.value)
    assert raised.value.__cause__ is None
    assert raised.value.__suppress_context__


def _capture(outcome: list[Any], call: Any, *args: Any) -> None:
    try:
        outcome.append(call(*args))
    except BaseException as exc:
        outcome.append(exc)


def _wait_for_query(admin: pymysql.Connection[Any], pattern: str) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = rows(
            admin, "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE %s", (pattern,)
        )
        if found:
            return int(found[0][0])
        time.sleep(0.02)
    raise AssertionError(f"no query like {pattern!r} showed up")


# -- names, URLs and messages (no server needed) ----------------------------------------------


def test_schema_names_are_generated_checked_and_quoted() -> None:
    assert schema_name(1296269, 42) == "pr_1296269_42"
    assert user_name("pr_1296269_42") == "pr_1296269_42"
    long_name = "base_" + "x" * 50
    assert len(user_name(long_name)) <= 32
    assert user_name(long_name) != user_name(long_name[:-1] + "y")
    for bad in ("pr_1`; DROP DATABASE x; --", "pr 1", "", "a" * 65, "pr-1", "naïve"):
        with pytest.raises(InvalidName):
            user_name(bad)
    with pytest.raises(InvalidName):
        schema_name(0, 1)
    assert issubclass(InvalidName, StagingDatabaseError)  # one PR's bad name fails that PR only
    assert quote_identifier("we`ird") == "`we``ird`"


def test_clone_refuses_unsafe_names_before_touching_the_server() -> None:
    staging = PyMysqlStagingDatabase.from_url("mysql://root@127.0.0.1:9")  # nothing listens
    for source, target in (("a`b", "pr_1_1"), ("base", "pr_1_1; DROP TABLE x")):
        with pytest.raises(InvalidName):
            staging.clone(source, target)
    with pytest.raises(InvalidName):
        staging.drop("pr_1_1`")
    with pytest.raises(InvalidName):
        staging.leftovers("pr_%")


def test_retarget_rewrites_schema_references_only() -> None:
    sql = "select `src`.`t`.`a` from `src`.`t` join src.u on `x`.`src`.`c` = 1 where mysrc.v"
    assert retarget(sql, "src", "pr_1_2") == (
        "select `pr_1_2`.`t`.`a` from `pr_1_2`.`t` join pr_1_2.u on `x`.`src`.`c` = 1 where mysrc.v"
    )


def test_urls_and_settings() -> None:
    for url in (
        "mysql://admin:s3cr%40t@db.internal:3307",
        "mysql+pymysql://admin:s3cr%40t@db.internal:3307/x",
    ):
        address = ServerAddress.from_url(url)
        assert (address.host, address.port, address.user, address.password) == (
            "db.internal",
            3307,
            "admin",
            "s3cr@t",
        )
        assert "s3cr" not in repr(address)
    assert ServerAddress.from_url("mysql://admin@db").port == 3306
    with pytest.raises(StagingDatabaseError, match="mysql://"):
        ServerAddress.from_url("postgresql://admin:pw@db/x")
    with pytest.raises(StagingDatabaseError, match="not set"):
        make_staging_database(StagingMysqlSettings(url="", max_user_connections=20))
    staging = make_staging_database(
        StagingMysqlSettings(url="mysql://admin:pw@db:3306", max_user_connections=20)
    )
    assert isinstance(staging, PyMysqlStagingDatabase)
    assert staging.address.host == "db"


def test_error_text_blanks_out_secrets() -> None:
    error = pymysql.err.ProgrammingError(1064, "syntax error near 'topsecret' at line 1")
    assert describe(error, "topsecret") == "(1064) syntax error near '***' at line 1"


# -- [staging_mysql] schema_prefix: two controllers on one server ----------------------------


def test_schema_prefix_names_schemas_and_users_and_owns_only_its_own() -> None:
    assert schema_name(12, 3, "shop") == "shop_12_3"
    assert user_name(schema_name(12, 3, "shop")) == "shop_12_3"
    assert is_owned("shop_12_3", "shop")
    assert not is_owned("pr_12_3", "shop")
    # "pr" and "pr_1" are different controllers: neither owns the other's names.
    assert is_owned("pr_1_23", "pr")
    assert not is_owned("pr_1_23", "pr_1")
    assert is_owned("pr_1_2_3", "pr_1")
    assert not is_owned("pr_1_2_3", "pr")
    for name in ("pr_1_2x", "pr_1", "pr__1_2", "prx_1_2", "shop_base"):
        assert not is_owned(name, "pr"), name
    for bad in ("", "1x", "a`b", "a" * 17):
        with pytest.raises(InvalidName):
            schema_name(1, 1, bad)


def test_a_controller_never_drops_or_lists_another_prefix_s_schemas(
    mysql_server_url: str, admin: pymysql.Connection[Any], cleanup: list[str]
) -> None:
    """Two controllers (prefixes ``pa…`` and ``pb…``) share one MariaDB: each lists and drops
    only its own schemas and users; the other's, and an admin's base schema, are refused."""
    tag = secrets.token_hex(3)
    first = PyMysqlStagingDatabase.from_url(mysql_server_url, prefix=f"pa{tag}")
    second = make_staging_database(
        StagingMysqlSettings(url=mysql_server_url, schema_prefix=f"pb{tag}")
    )
    assert second.schema_prefix == f"pb{tag}"
    source = new_source()
    cleanup.append(source)
    run(admin, f"CREATE DATABASE {quote_identifier(source)}")
    run(admin, f"CREATE TABLE {quote_identifier(source)}.t (id INT PRIMARY KEY)")
    mine, theirs = schema_name(1, 7, first.prefix), schema_name(1, 7, second.prefix)
    cleanup.extend([mine, theirs])
    for staging, target in ((first, mine), (second, theirs)):
        staging.clone(source, target)
        staging.create_user(target)

    assert [x.name for x in first.leftovers()] == [mine, mine]  # schema and user
    assert [x.name for x in second.leftovers()] == [theirs, theirs]
    for refused in (theirs, source):
        with pytest.raises(InvalidName, match="schema_prefix"):
            first.drop(refused)
        with pytest.raises(InvalidName, match="schema_prefix"):
            first.clone(source, refused)  # a clone drops its target first
    with pytest.raises(InvalidName):
        first.leftovers(f"pb{tag}_")
    assert second.exists(theirs)
    assert first.exists(source)
    assert rows(admin, "SELECT COUNT(*) FROM mysql.user WHERE User = %s", (theirs,)) == [(1,)]

    first.drop(mine)
    assert not first.exists(mine)
    assert first.leftovers() == []
    assert [x.name for x in second.leftovers(f"pb{tag}_1_")] == [theirs, theirs]
