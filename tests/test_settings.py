"""Settings: environment parsing, and the CPU count a container is really given."""

from pathlib import Path

import pytest

from functions.config.cpus import cgroup_cpus
from functions.config.settings import Settings
from functions.config.structs import EnvError


@pytest.mark.parametrize("files, cpus", [
    ({"cpu.max": "100000 100000\n"}, 1.0),  # Cloud Run, 1 vCPU (cgroup v2)
    ({"cpu.max": "50000 100000\n"}, 0.5),
    ({"cpu.max": "max 100000\n"}, None),
    ({"cpu/cpu.cfs_quota_us": "200000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 2.0),  # v1
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
    ({}, None),
])
def test_cgroup_quota(tmp_path: Path, files: dict[str, str], cpus: float | None) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert cgroup_cpus(tmp_path) == cpus


def test_from_env_converts_and_names_the_bad_variable() -> None:
    s = Settings.from_env({"MAX_INSTANCES": "7", "WARMUP": "false", "LOG_FORMAT": "json",
                           "LOOKUP_SPECS": '[{"key_field": "u", "url_template": "http://x/{key}",'
                                           ' "features": {"a": "b"}}]'})
    assert (s.max_instances, s.warmup, s.log_format) == (7, False, "json")
    assert s.lookup_specs[0].key_field == "u"
    assert 1 <= s.intra_op_threads <= 4
    with pytest.raises(EnvError, match="MAX_INSTANCES"):
        Settings.from_env({"MAX_INSTANCES": "many"})


@pytest.mark.parametrize("env, message", [
    ({"BATCH_MAX_ROWS": "0"}, r"^BATCH_MAX_ROWS=0: .*>= 1"),
    ({"LOG_FORMAT": "xml"}, r"^LOG_FORMAT=xml: "),
    ({"WARMUP": "maybe"}, r"^WARMUP=maybe: .*bool"),
    ({"LOOKUP_SPECS": "[{}]"}, r"^LOOKUP_SPECS: .*key_field"),
    ({"LOOKUP_SPECS": "{not json"}, r"^LOOKUP_SPECS is not JSON"),
])
def test_a_bad_value_is_refused_naming_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(EnvError, match=message):
        Settings.from_env(env)


def test_from_env_ignores_unknown_variables_and_reads_words() -> None:
    s = Settings.from_env({"NOT_A_SETTING": "x", "WARMUP": "off", "EVENT_ROUTES": "yes",
                           "MODEL_CACHE_DIR": "/tmp/c", "LOOKUP_SPECS": '[{"key_field": "u",'
                           ' "url_template": "u/{key}", "features": {}, "newer": 1}]'})
    assert (s.warmup, s.event_routes, s.model_cache_dir) == (False, True, Path("/tmp/c"))
    assert s.lookup_specs[0].extra == {"newer": 1}
    assert Settings(batch_max_rows=3).batch_max_rows == 3
