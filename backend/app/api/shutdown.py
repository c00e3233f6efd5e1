"""Graceful shutdown on SIGTERM: finish answers in flight, then close sockets with 1001.

uvicorn closes every WebSocket with 1012 the moment it starts shutting down, cutting
visitors off mid-answer. So the app takes SIGTERM first: it stops taking new sockets,
lets answers in flight finish (up to SHUTDOWN_GRACE_SECONDS) while their visitors still
watch them stream, closes the sockets with 1001 (going away) so clients reconnect
elsewhere, and only then hands the signal to the server's own handler.
"""

import asyncio
import signal
from collections.abc import Callable
from types import FrameType

from app.api.socket.connections import ConnectionRegistry
from app.chat.service import ConversationService
from app.core.logger import get_logger

logger = get_logger(__name__)

GOING_AWAY = 1001


def install_graceful_shutdown(
    connections: ConnectionRegistry, service: ConversationService, grace_seconds: float
) -> Callable[[], None]:
    """Wrap the server's SIGTERM handler; returns a function that restores it."""
    previous = signal.getsignal(signal.SIGTERM)
    if not callable(previous):  # no Python handler to hand over to (tests, embedded servers)
        return lambda: None
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[None]] = set()

    async def drain(sig: int, frame: FrameType | None) -> None:
        connections.draining = True
        logger.info(
            "SIGTERM: finishing answers in flight, then closing %d socket(s)", len(connections)
        )
        await service.wait_for_turns(grace_seconds)
        await connections.close_all(GOING_AWAY, "server shutting down")
        previous(sig, frame)

    def on_sigterm(sig: int, frame: FrameType | None) -> None:
        if connections.draining:
            previous(sig, frame)  # a second SIGTERM: stop now
            return
        task = loop.create_task(drain(sig, frame))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous)

    signal.signal(signal.SIGTERM, on_sigterm)
    return restore
