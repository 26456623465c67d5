"""Clone a generated schema with pullre and with ``mysqldump SRC | mysql DST``; print the ratio.

Run from the repository root, against a server where the URL's account may create and drop
schemas and users:

    .venv/bin/python bench/clone.py mysql+pymysql://root@127.0.0.1:3306
    PULLRE_TEST_MYSQL_URL=mysql://root@127.0.0.1:3306 .venv/bin/python bench/clone.py

With neither, it starts a throwaway MariaDB from the installed binaries (as the tests do).
Options: ``--rows N`` total rows (default 1,000,000), ``--tables N`` (default 22, at least 20).

The data: ``customers`` and ``products`` parents plus child tables ``orders_NN`` with foreign
keys to both, secondary and composite indexes, decimals, dates and text. The baseline is the dump
pipe pullre replaced: ``mariadb-dump --single-transaction --routines --triggers --events SRC |
mariadb DST`` (mysqldump/mysql where MariaDB's names are missing), with the client's default
``--opt``. Both copies are checked against the source: row counts and CHECKSUM TABLE per table.
Everything the bench made is dropped at the end, also on failure.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pymysql
from sqlalchemy import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pullre.staging_db.database import PyMysqlStagingDatabase
from pullre.staging_db.names import quote_identifier, schema_name

DIGITS = "(" + " UNION ALL ".join(f"SELECT {d} AS d" for d in range(10)) + ")"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", default=os.environ.get("PULLRE_TEST_MYSQL_URL", ""))
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--tables", type=int, default=22)
    args = parser.parse_args(argv)
    if args.tables < 3:
        parser.error("--tables must be at least 3")
    with ExitStack() as stack:
        url = args.url or stack.enter_context(throwaway_server())
        return bench(url, total_rows=args.rows, tables=args.tables)


def bench(url: str, *, total_rows: int, tables: int) -> int:
    tag = secrets.token_hex(4)
    source = f"pullre_bench_src_{tag}"
    by_pullre = schema_name(800_000_000 + secrets.randbelow(99_999_999), 1)
    by_dump = f"pullre_bench_dump_{tag}"
    staging = PyMysqlStagingDatabase.from_url(url)
    admin = connect(url)
    try:
        started = time.monotonic()
        generated = generate(admin, source, total_rows=total_rows, tables=tables)
        print(
            f"generated {source}: {len(generated)} tables, {sum(generated.values()):,} rows "
            f"in {time.monotonic() - started:.1f}s"
        )
        result = staging.clone(source, by_pullre)
        pullre_s = result.seconds
        print(
            f"pullre clone     : {pullre_s:7.2f}s  ({result.tables} tables, {result.rows:,} rows)"
        )
        dump_s = dump_pipe(url, source, by_dump, admin)
        print(f"mariadb-dump pipe: {dump_s:7.2f}s")

        expected = fingerprint(admin, source)
        problems = [
            f"{name}: {table}: {theirs} != {mine}"
            for name, copy in (("pullre", by_pullre), ("dump", by_dump))
            for table, (mine, theirs) in _pairs(expected, fingerprint(admin, copy))
            if mine != theirs
        ]
        if sorted(generated) != sorted(expected) or problems:
            print("FIDELITY FAILED:\n  " + "\n  ".join(problems or ["table list differs"]))
            return 1
        print(f"fidelity         : row counts and CHECKSUM TABLE equal on {len(expected)} tables")
        print(f"ratio            : pullre is {dump_s / pullre_s:.1f}x faster than the dump pipe")
        return 0
    finally:
        staging.drop(by_pullre)
        with admin.cursor() as cursor:
            for schema in (source, by_dump):
                cursor.execute(f"DROP DATABASE IF EXISTS {quote_identifier(schema)}")
        admin.close()


def generate(conn: Any, schema: str, *, total_rows: int, tables: int) -> dict[str, int]:
    """Parents of 1/10 and 1/50 of the rows, the rest spread over the child tables."""
    customers = max(total_rows // 10, 1)
    products = max(total_rows // 50, 1)
    children = tables - 2
    per_child = max((total_rows - customers - products) // children, 1)
    q = quote_identifier(schema)
    statements = [
        f"CREATE DATABASE {q} CHARACTER SET utf8mb4",
        f"USE {q}",
        "CREATE TABLE customers (id INT AUTO_INCREMENT PRIMARY KEY, email VARCHAR(120) NOT NULL,"
        " name VARCHAR(80) NOT NULL, country CHAR(2) NOT NULL, created_at DATETIME NOT NULL,"
        " UNIQUE KEY uq_email (email), KEY ix_country_created (country, created_at))",
        "CREATE TABLE products (id INT AUTO_INCREMENT PRIMARY KEY, sku CHAR(12) NOT NULL,"
        " title VARCHAR(120) NOT NULL, price DECIMAL(10,2) NOT NULL, UNIQUE KEY uq_sku (sku))",
        "INSERT INTO customers (id, email, name, country, created_at)"
        f" SELECT n + 1, CONCAT('user', n, '@example.com'), CONCAT('Customer ', n),"
        " ELT(1 + n % 4, 'NL', 'DE', 'FR', 'GB'), '2020-01-01' + INTERVAL n MINUTE"
        f" FROM ({numbers(customers)}) s",
        "INSERT INTO products (id, sku, title, price)"
        " SELECT n + 1, LPAD(n, 12, '0'), CONCAT('Product ', n, ' ', SHA1(n)), 1 + (n % 500) * 0.99"
        f" FROM ({numbers(products)}) s",
    ]
    for index in range(children):
        table = f"orders_{index:02d}"
        statements += [
            f"CREATE TABLE {table} (id BIGINT AUTO_INCREMENT PRIMARY KEY,"
            " customer_id INT NOT NULL, product_id INT NOT NULL, quantity SMALLINT NOT NULL,"
            " amount DECIMAL(12,2) NOT NULL, status VARCHAR(10) NOT NULL,"
            " placed_at DATETIME NOT NULL, comment TEXT,"
            " KEY ix_customer_placed (customer_id, placed_at), KEY ix_status (status),"
            f" CONSTRAINT fk_{table}_customer FOREIGN KEY (customer_id) REFERENCES customers (id),"
            f" CONSTRAINT fk_{table}_product FOREIGN KEY (product_id) REFERENCES products (id))",
            f"INSERT INTO {table} (customer_id, product_id, quantity, amount, status, placed_at,"
            " comment)"
            f" SELECT 1 + (n * 7 + {index}) % {customers}, 1 + (n * 13 + {index}) % {products},"
            " 1 + n % 5, (1 + n % 5) * 3.75, ELT(1 + n % 3, 'new', 'paid', 'shipped'),"
            " '2021-01-01' + INTERVAL n SECOND, IF(n % 4 = 0, NULL, REPEAT(SHA1(n), 1 + n % 3))"
            f" FROM ({numbers(per_child)}) s",
        ]
    with conn.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
        cursor.execute(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s", (schema,)
        )
        names = [name for (name,) in cursor.fetchall()]
        counts = {}
        for name in names:
            cursor.execute(f"SELECT COUNT(*) FROM {q}.{quote_identifier(name)}")
            (counts[name],) = cursor.fetchone()
    return counts


def dump_pipe(url: str, source: str, target: str, admin: Any) -> float:
    """Seconds for the dump | load pipe, database creation included as a clone would do it."""
    dump = shutil.which("mariadb-dump") or shutil.which("mysqldump")
    load = shutil.which("mariadb") or shutil.which("mysql")
    if dump is None or load is None:
        raise SystemExit("needs mariadb-dump and mariadb (or mysqldump and mysql) on PATH")
    parsed = make_url(url)
    with tempfile.NamedTemporaryFile("w", suffix=".cnf") as defaults:
        # The password goes to the clients in a 0600 file, not on their command lines.
        defaults.write(
            "[client]\n"
            f"host={parsed.host}\nport={parsed.port or 3306}\nuser={parsed.username}\n"
            f"password={parsed.password or ''}\n"
        )
        defaults.flush()
        options = [f"--defaults-extra-file={defaults.name}"]
        started = time.monotonic()
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {quote_identifier(target)} CHARACTER SET utf8mb4")
        producer = subprocess.Popen(
            [
                dump,
                *options,
                "--single-transaction",
                "--routines",
                "--triggers",
                "--events",
                source,
            ],
            stdout=subprocess.PIPE,
        )
        consumer = subprocess.run([load, *options, target], stdin=producer.stdout, check=False)
        assert producer.stdout is not None
        producer.stdout.close()
        if producer.wait() != 0 or consumer.returncode != 0:
            raise SystemExit(f"dump pipe failed: {producer.returncode} | {consumer.returncode}")
        return time.monotonic() - started


def fingerprint(conn: Any, schema: str) -> dict[str, tuple[int, int]]:
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
            "AND TABLE_TYPE = 'BASE TABLE'",
            (schema,),
        )
        result = {}
        for (table,) in cursor.fetchall():
            name = f"{quote_identifier(schema)}.{quote_identifier(table)}"
            cursor.execute(f"SELECT COUNT(*) FROM {name}")
            (count,) = cursor.fetchone()
            cursor.execute(f"CHECKSUM TABLE {name}")
            result[table] = (count, cursor.fetchone()[1])
    return result


def _pairs(expected: dict[str, Any], actual: dict[str, Any]) -> list[tuple[str, tuple[Any, Any]]]:
    return [(table, (expected[table], actual.get(table))) for table in sorted(expected)] + [
        (table, (None, actual[table])) for table in sorted(set(actual) - set(expected))
    ]


def numbers(count: int) -> str:
    """0..count-1 made on the server by cross-joining digits (no recursion limits to raise)."""
    width = len(str(max(count - 1, 1)))
    joins = ", ".join(f"{DIGITS} AS d{i}" for i in range(width))
    value = " + ".join(f"d{i}.d * {10**i}" for i in range(width))
    return f"SELECT {value} AS n FROM {joins} HAVING n < {count}"


def connect(url: str) -> Any:
    parsed = make_url(url)
    return pymysql.connect(
        host=parsed.host,
        port=parsed.port or 3306,
        user=parsed.username,
        password=parsed.password or "",
        charset="utf8mb4",
        autocommit=True,
    )


@contextmanager
def throwaway_server() -> Iterator[str]:
    # Imported here: the test fixtures pull in pytest, which a run with a URL does not need.
    from tests.mysql_fixtures import ThrowawayServer  # noqa: PLC0415

    server = ThrowawayServer.start()
    print(f"(no URL given: started a throwaway MariaDB on port {server.port})")
    try:
        yield server.url.render_as_string(hide_password=False)
    finally:
        server.stop()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
