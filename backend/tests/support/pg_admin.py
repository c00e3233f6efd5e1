"""Create or drop a throwaway PostgreSQL database for a test run.

Usage: `python tests/support/pg_admin.py ADMIN_URL create|drop NAME`. The test suite
uses the same functions to give each pytest-xdist worker a database of its own,
`NAME_gw0`, `NAME_gw1`, ...; `drop` also drops any of those a killed run left behind.
"""

import asyncio
import re
import sys

import asyncpg


def _checked(name: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise ValueError(f"unsafe database name: {name!r}")
    return name


def _dsn(url: str) -> str:
    """asyncpg's form of a SQLAlchemy URL (`postgresql+asyncpg://` -> `postgresql://`)."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def create_database(admin_url: str, name: str, *, exist_ok: bool = False) -> None:
    connection = await asyncpg.connect(_dsn(admin_url))
    try:
        await connection.execute(f'CREATE DATABASE "{_checked(name)}"')
    except asyncpg.DuplicateDatabaseError:
        if not exist_ok:
            raise
    finally:
        await connection.close()


async def drop_database(admin_url: str, name: str) -> None:
    """Drop `name` if it exists, ending any session still connected to it."""
    connection = await asyncpg.connect(_dsn(admin_url))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{_checked(name)}" WITH (FORCE)')
    finally:
        await connection.close()


async def worker_databases(admin_url: str, name: str) -> list[str]:
    """The per-worker copies of `name` that exist on the server."""
    connection = await asyncpg.connect(_dsn(admin_url))
    try:
        rows = await connection.fetch("SELECT datname FROM pg_database")
    finally:
        await connection.close()
    copy = re.compile(rf"{re.escape(_checked(name))}_gw[0-9]+")
    return sorted(row["datname"] for row in rows if copy.fullmatch(row["datname"]))


async def main(admin_url: str, action: str, name: str) -> None:
    if action == "create":
        await create_database(admin_url, name)
    elif action == "drop":
        for database in [name, *await worker_databases(admin_url, name)]:
            await drop_database(admin_url, database)
    else:
        raise SystemExit(f"unknown action: {action!r}")


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
