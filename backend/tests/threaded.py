"""The fake provider and the app served from a background thread, for synchronous tests."""

import asyncio
import threading
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager

from app.core.config import Settings
from app.main import create_app
from tests.fake_llm import start_fake_llm
from tests.servers import serve


@contextmanager
def threaded_app(**settings: object) -> Iterator[int]:
    """Serve the app (with a fake provider) on loopback until the block ends; yields the port."""
    loop = asyncio.new_event_loop()
    stack = AsyncExitStack()

    async def start() -> int:
        fake = await stack.enter_async_context(start_fake_llm())
        values: dict[str, object] = {
            "openrouter_api_key": "sk-test",
            "openrouter_base_url": fake.base_url,
        }
        app = create_app(Settings(_env_file=None, **(values | settings)))  # type: ignore[arg-type]
        return await stack.enter_async_context(serve(app))

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=60)
    finally:
        asyncio.run_coroutine_threadsafe(stack.aclose(), loop).result(timeout=60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
