"""Cold start (issue 18): `import app.main` loads only what every deployment needs.

Each library below serves some deployments only and loads when first needed: the
excerpt index (bm25s, numpy) on the first answer from the resume, the PostgreSQL driver
with a PostgreSQL engine, the SMTP client with e-mail notifications, Alembic when the
schema is behind, the Redis client with REDIS_URL, PyYAML for a YAML resume. So do our
own modules of the excerpt answers (their index, topics, passages and wording), which a
deployment with a model may never use.
"""

import subprocess
import sys

LOADED_WHEN_NEEDED = (
    *("bm25s", "numpy", "asyncpg", "aiosmtplib", "alembic", "redis", "yaml"),
    "sqlalchemy.dialects.postgresql",
    *("app.resume.excerpt_index", "app.resume.topics", "app.resume.passages", "app.resume.replies"),
)


def test_importing_the_app_loads_none_of_the_modules_some_deployments_need() -> None:
    code = f"import sys, app.main; print(sorted(set({LOADED_WHEN_NEEDED!r}) & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
