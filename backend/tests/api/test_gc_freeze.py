"""`GC_FREEZE`: start-up's objects leave the garbage collector's full passes."""

import gc
from collections.abc import Iterator

import pytest

from tests.conftest import SettingsFactory
from tests.support.app import running_app


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """This test process's heap as it was: anything the app froze is thawed afterwards."""
    gc.unfreeze()
    yield
    gc.unfreeze()


@pytest.mark.usefixtures("unfrozen")
@pytest.mark.parametrize("freeze", [True, False])
async def test_start_up_freezes_what_it_made_unless_told_not_to(
    make_settings: SettingsFactory, freeze: bool
) -> None:
    async with running_app(make_settings(gc_freeze=freeze)):
        frozen = gc.get_freeze_count()

    if freeze:
        assert frozen > 50_000  # the app's modules, models and routes at the least
    else:
        assert frozen == 0
