"""Create or drop a throwaway PostgreSQL database for a test run.

Usage: `python tests/support/pg_admin.py ADMIN_URL create|drop NAME`.
"""

import asyncio
import re
import sys

import asyncpg


async def main(admin_url: str, action: str, name: str) -> None:
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise SystemExit(f"unsafe database name: {name!r}")
    connection = await asyncpg.connect(admin_url)
    try:
        if action == "create":
            await connection.execute(f'CREATE DATABASE "{name}"')
        elif action == "drop":
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        else:
            raise SystemExit(f"unknown action: {action!r}")
    finally:
        await connection.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
