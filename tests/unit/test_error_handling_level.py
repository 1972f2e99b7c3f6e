"""The seed's ``errorHandlingLevel``: ``minimal`` retries nothing on its own, ``standard``
retries retryable errors by the default policy, ``aggressive`` retries every error; a
step's own ``retry`` applies at every level."""

from __future__ import annotations

from coordinator.config import Settings
from coordinator.engine import events as ev
from coordinator.engine.core import EngineDefaults
from coordinator.engine.model import RetrySpec
from tests.conftest import fast_settings
from tests.unit.test_engine_core import Driver, run, task


def defaults(level: str) -> EngineDefaults:
    settings: Settings = fast_settings(error_handling_level=level, max_retries=2)
    return EngineDefaults(
        retry=settings.retry_policy, retry_every_error=settings.error_handling_level == "aggressive"
    )


def attempts(d: Driver, error: ev.StepError) -> int:
    """Fail every attempt with ``error`` until the execution ends; how many ran."""
    d.start()
    while not any(isinstance(c, ev.Finished) for c in d.out):
        d.feed(ev.TaskFailed(d.now, d.last_dispatch().key, error))
        for timer in d.timers():
            if not any(isinstance(i, ev.TimerFired) and i.key == timer.key for i in d.inputs):
                d.fire(timer)
    return len(d.dispatched())


BUSY = ev.StepError("Busy", "try later", retryable=True)
BAD = ev.StepError("BadInput", "never works", retryable=False)


def test_each_level() -> None:
    assert attempts(run(task("a"), defaults=defaults("minimal")), BUSY) == 1
    assert attempts(run(task("a"), defaults=defaults("standard")), BUSY) == 3
    assert attempts(run(task("a"), defaults=defaults("standard")), BAD) == 1
    assert attempts(run(task("a"), defaults=defaults("aggressive")), BAD) == 3


def test_a_steps_own_retry_applies_at_every_level() -> None:
    own = RetrySpec(max_attempts=2, interval_ms=1)
    for level in ("minimal", "standard", "aggressive"):
        assert attempts(run(task("a", retry=own), defaults=defaults(level)), BAD) == 2
