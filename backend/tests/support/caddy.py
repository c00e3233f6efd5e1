"""Debian's Caddy in front of a test app, running deploy/Caddyfile as shipped.

Only what a test machine needs is changed: the site is https://127.0.0.1:PORT with a
certificate from Caddy's own local CA (`tls internal`, trusted by nobody), the app's port
in `reverse_proxy`, and global options that keep Caddy to a temporary directory: no admin
endpoint, no port 80, no root certificate installed into the system.
"""

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from tests.support.app import BACKEND, free_port, wait_for_port
from tests.support.nginx import Proxy

CADDY = shutil.which("caddy")
SHIPPED = BACKEND.parent / "deploy" / "Caddyfile"


def site_config(directory: Path, app_port: int, http_port: int, https_port: int) -> str:
    """deploy/Caddyfile for this machine; fails if its shape moved."""
    text = SHIPPED.read_text()
    replacements = {
        "{\n\tservers {": (
            f"{{\n\tadmin off\n\tstorage file_system {directory / 'data'}\n"
            f"\thttp_port {http_port}\n\thttps_port {https_port}\n"
            "\tskip_install_trust\n\tauto_https disable_redirects\n\tservers {"
        ),
        "chat.example.com {": f"https://127.0.0.1:{https_port} {{\n\ttls internal",
        "reverse_proxy 127.0.0.1:8000 {": f"reverse_proxy 127.0.0.1:{app_port} {{",
    }
    for old, new in replacements.items():
        assert text.count(old) == 1, f"deploy/Caddyfile no longer has {old!r} once"
        text = text.replace(old, new)
    return text


@asynccontextmanager
async def caddy_in_front(app_port: int) -> AsyncIterator[Proxy]:
    """Serve deploy/Caddyfile in front of the app on `app_port` until the block ends."""
    assert CADDY is not None
    directory = Path(tempfile.mkdtemp(prefix="caddy-test-"))
    try:
        https_port = free_port()
        config = directory / "Caddyfile"
        config.write_text(site_config(directory, app_port, free_port(), https_port))
        home = {"HOME": str(directory), "XDG_DATA_HOME": str(directory / "data")}
        process = await asyncio.create_subprocess_exec(
            CADDY, "run", "--config", str(config), "--adapter", "caddyfile",
            env=home | {"XDG_CONFIG_HOME": str(directory / "config")},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            await wait_for_port(https_port, process, "caddy")
            yield Proxy(https_port, directory)
        finally:
            if process.returncode is None:
                process.terminate()
            _out, err = await process.communicate()
            if process.returncode not in (0, 1, -15):
                raise RuntimeError(f"caddy failed: {err.decode()[-3000:]}")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
