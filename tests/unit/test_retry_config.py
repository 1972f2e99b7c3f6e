from __future__ import annotations

from pathlib import Path

import pytest

from coordinator.config import load_settings
from coordinator.errors import ConfigError
from coordinator.retry import RetryPolicy, RetryStrategy


def test_exponential_backoff_is_capped() -> None:
    p = RetryPolicy(RetryStrategy.EXPONENTIAL, 5, 100, 2.0, 500, jitter=0)
    assert [p.delay_ms(n) for n in range(1, 6)] == [100, 200, 400, 500, 500]
    assert p.allows(4) and not p.allows(5)


def test_linear_and_none() -> None:
    assert [RetryPolicy(RetryStrategy.LINEAR, 3, 100, jitter=0).delay_ms(n) for n in (1, 2, 3)] == [
        100,
        200,
        300,
    ]
    none = RetryPolicy(RetryStrategy.NONE, 3)
    assert not none.allows(0) and none.delay_ms(1) == 0


def test_jitter_stays_within_bounds() -> None:
    p = RetryPolicy(RetryStrategy.EXPONENTIAL, 3, 1000, 2.0, 60_000, jitter=0.5)
    delays = [p.delay_ms(2) for _ in range(200)]
    assert all(1000 <= d <= 2000 for d in delays)
    assert max(delays) - min(delays) > 500, "jitter must actually spread delays"
    # A given spread places the delay in the band deterministically.
    assert [p.delay_ms(2, s) for s in (0.0, 0.5, 0.999)] == [2000, 1500, 2000 * (1 - 0.4995)]


def test_sources_merge_in_order(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text('[coordinator]\nconcurrencyLimit = 4\nmax_retries = 9\nretryStrategy = "linear"\n')
    s = load_settings(f, {"max_retries": 2}, environ={"AGENTMESH_CONCURRENCY_LIMIT": "6"})
    assert s.concurrency_limit == 6  # env beats file
    assert s.max_retries == 2  # flags beat env and file
    assert s.retry_strategy is RetryStrategy.LINEAR
    assert s.retry_policy.max_retries == 2


@pytest.mark.parametrize(
    ("content", "suffix", "message"),
    [
        (
            "defaultTimeoutMs: -5\n",
            ".yaml",
            "default_timeout_ms: Input should be greater than or equal to 1",
        ),
        ("{bad", ".json", "is not valid json"),
        ("- 1\n", ".yaml", "must hold a mapping"),
        ("unknownKey: 1\n", ".yaml", "unknownKey: Extra inputs are not permitted"),
        (
            'retryStrategy: "sometimes"\n',
            ".yaml",
            "retry_strategy: Input should be 'none', 'linear' or 'exponential'",
        ),
    ],
)
def test_bad_config_is_named(tmp_path: Path, content: str, suffix: str, message: str) -> None:
    f = tmp_path / f"c{suffix}"
    f.write_text(content)
    with pytest.raises(ConfigError) as info:
        load_settings(f, environ={})
    assert message in str(info.value)


def test_bad_listen_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="expected host:port"):
        load_settings(overrides={"listen": "nowhere"}, environ={})
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path / "missing.yaml", environ={})


def test_readme_documents_every_setting() -> None:
    from coordinator.config import Settings

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    missing = [name for name in Settings.model_fields if f"`{name}`" not in readme]
    assert not missing, f"README configuration table lacks {missing}"
