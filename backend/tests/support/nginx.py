"""Debian's nginx in front of a test app, running deploy/nginx.conf as shipped.

Only what a test machine needs is changed: loopback test ports for the listeners, a
throwaway self-signed certificate, the app's port in the upstream, and IPv6 listeners
dropped. nginx runs unprivileged (as `nobody` when the tests run as root) with its pid,
logs and temporary files in a temporary directory.
"""

import asyncio
import os
import shutil
import ssl
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.app import BACKEND, free_port, wait_for_port
from tests.support.tls import self_signed

NGINX = Path("/usr/sbin/nginx")
SHIPPED = BACKEND.parent / "deploy" / "nginx.conf"

MAIN = """\
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    include {dir}/site.conf;
}}
"""


@dataclass(frozen=True)
class Proxy:
    port: int  # HTTPS
    directory: Path

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"wss://127.0.0.1:{self.port}/ws"

    def error_log(self) -> str:
        return (self.directory / "error.log").read_text(errors="replace")


def client_tls() -> ssl.SSLContext:
    """TLS for a client of the test proxy, whose certificate is self-signed."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def site_config(directory: Path, app_port: int, http_port: int, https_port: int) -> str:
    """deploy/nginx.conf with this machine's ports and certificate; fails if its shape moved."""
    text = SHIPPED.read_text()
    replacements = {
        "    listen 80;\n": f"    listen 127.0.0.1:{http_port};\n",
        "    listen 443 ssl;\n": f"    listen 127.0.0.1:{https_port} ssl;\n",
        "    listen [::]:80;\n": "",
        "    listen [::]:443 ssl;\n": "",
        "/etc/letsencrypt/live/chat.example.com/fullchain.pem": str(directory / "cert.pem"),
        "/etc/letsencrypt/live/chat.example.com/privkey.pem": str(directory / "key.pem"),
        "server 127.0.0.1:8000;": f"server 127.0.0.1:{app_port};",
    }
    for old, new in replacements.items():
        assert text.count(old) == 1, f"deploy/nginx.conf no longer has {old!r} once"
        text = text.replace(old, new)
    return text


def _unprivileged(directory: Path) -> list[str]:
    """The command prefix that drops root, and a directory `nobody` may use."""
    if os.geteuid() != 0:
        return []
    for path in [directory, *directory.rglob("*")]:
        shutil.chown(path, "nobody", "nogroup")
    return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


@asynccontextmanager
async def nginx_in_front(app_port: int) -> AsyncIterator[Proxy]:
    """Serve deploy/nginx.conf in front of the app on `app_port` until the block ends."""
    directory = Path(tempfile.mkdtemp(prefix="nginx-test-"))
    try:
        self_signed(directory)
        https_port = free_port()
        site = site_config(directory, app_port, free_port(), https_port)
        (directory / "site.conf").write_text(site)
        (directory / "nginx.conf").write_text(MAIN.format(dir=directory))
        command = [
            *_unprivileged(directory), str(NGINX), "-p", str(directory),
            "-c", str(directory / "nginx.conf"), "-e", str(directory / "error.log"),
            "-g", "daemon off;",
        ]  # fmt: skip
        process = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        proxy = Proxy(https_port, directory)
        try:
            await wait_for_port(https_port, process, "nginx")
            yield proxy
        finally:
            if process.returncode is None:
                process.terminate()
            _out, err = await process.communicate()
            if process.returncode not in (0, -15):
                raise RuntimeError(f"nginx failed: {err.decode()}{proxy.error_log()}")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
