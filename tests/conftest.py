"""Shared fixtures: the function in process or over a socket, real servers, built models.

- ``app(env, **kw)``: the function in this process (tests/inprocess.py): the Router that
  functions.runtime builds, behind functions-framework's ASGI app, through Starlette's
  TestClient; ``demo_app`` serves the bundled model for the whole session. The default for
  contract and validation tests.
- ``serve(env, **kw)``: the function over HTTP under functions-framework (subprocess), for
  tests whose subject is the process or the wire (fork, signals, workers, real clients).
- ``built_model(kind)``: each kind of tests/model_kinds.py built once per session;
  ``minilm_model``: all-MiniLM-L6-v2 exported once by ``model_export hf``; once for all
  the session's xdist workers (tests/built_models.py).
- ``gcs_server``: gcp-storage-emulator, in-process; value is ``http://127.0.0.1:PORT``,
  to be set as STORAGE_EMULATOR_HOST (``gcs_env`` gives the env dict for subprocesses).
- ``s3_server``: moto's server; value is its endpoint URL (``s3_env`` gives the env dict).
- ``file_server``: a plain HTTP server over a directory.
"""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings

from tests import survivors
from tests.built_models import BuiltModels, built_once, session_root
from tests.inprocess import InProcess, start_in_process
from tests.servers import ROOT, Served, free_port, start_file_server, start_function

# The property tests (the fuzzers, schemathesis) draw the same cases on every run, so a
# run passes or fails on the code alone; HYPOTHESIS_PROFILE=explore draws new ones each
# run, to look for what those miss (docs/testing.md).
hypothesis_settings.register_profile("repeatable", derandomize=True)
hypothesis_settings.register_profile("explore", derandomize=False)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

RUN_ID = survivors.mark()  # inherited by every process the tests start
DEMO_MODEL = ROOT / "models" / "iris.onnx"
DEMO_CARD = ROOT / "models" / "iris.card.json"
AWS_FAKE = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1", "AWS_SESSION_TOKEN": "testing"}


WATCHED = ("AWS_", "GOOGLE_", "STORAGE_", "PUBSUB_", "CLOUDSDK_", "AIP_", "K_", "FUNCTION_",
           "MODEL_", "MESSAGE_", "EVENT_", "LOOKUP_", "BATCH", "MAX_", "LOG_", "SHUTDOWN_",
           "CHUNK_", "POISON_", "EXECUTION_", "INLINE_", "WARMUP", "REQUIRE_", "OPTIMIZED_")
"""Prefixes of the variables the function or its SDKs read (settings, clouds, emulators); a
library's import-time settings (torch's KMP_*, say) are not the test's doing."""
IMPORT_TIME = frozenset({"AWS_DATA_PATH", "FUNCTION_TARGET", "FUNCTION_SIGNATURE_TYPE"})
"""Watched names a library sets for the process: awscli its data folder when imported,
functions-framework the target of the last app it built (popping them again would race the
model load that main.py starts in a thread, which may be copying the environment)."""


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """A test body leaves the environment the function reads as it found it: what it changed
    is put back, and a test that passed fails naming the variables (a leaked emulator host,
    say, sends every later test to a dead port). Fixtures change the environment through
    monkeypatch or tests.inprocess.environment, which restore it themselves."""
    before = dict(os.environ)
    outcome = yield
    patch = item.funcargs.get("monkeypatch") if isinstance(item, pytest.Function) else None
    restored_later = {key for where, key, _ in getattr(patch, "_setitem", [])
                      if where is os.environ}  # monkeypatch puts these back at teardown
    changed = sorted(k for k in before.keys() | os.environ.keys()
                     if before.get(k) != os.environ.get(k) and k.startswith(WATCHED)
                     and k not in IMPORT_TIME and k not in restored_later)
    for key in changed:
        if key in before:
            os.environ[key] = before[key]
        else:
            del os.environ[key]
    if changed:
        pytest.fail(f"the test left os.environ changed: {', '.join(changed)} (restored now; "
                    "use monkeypatch.setenv or tests.inprocess.environment)", pytrace=False)
    return outcome


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist's ``--dist loadgroup`` (``make test``): a module's tests run on one
    worker, so its module fixtures (servers, built models) are set up once; a module may
    name a group of its own (``xdist_group``) to share a worker with another module. Tests
    marked ``spread`` (long fuzz runs) are each a unit of their own and come first: with
    ``--no-loadscope-reorder`` the longest work is handed out first, and the workers end
    together."""
    if not getattr(config.option, "loadgroup", False):
        return
    items.sort(key=lambda item: item.get_closest_marker("spread") is None)  # stable
    for item in items:
        if not item.get_closest_marker("spread") and not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run, naming them, if processes the tests started are still alive; then
    kill them, so that nothing survives the suite. Under pytest-xdist the controller
    checks, last, once its workers are gone (they carry its marker, as do their children);
    a worker does not, as it would count the other workers."""
    if hasattr(session.config, "workerinput"):
        return
    left = survivors.survivors(RUN_ID)
    if not left:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    lines = [f"pid {pid}: {cmd[:300]}" for pid, cmd in sorted(left.items())]
    if reporter is not None:
        reporter.write_line("")
        reporter.write_sep("=", "processes started by the tests are still alive", red=True)
        for line in lines:
            reporter.write_line(line, red=True)
    else:
        print("processes started by the tests are still alive:", *lines, sep="\n")
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _each_stopped(start: Callable[..., Any], tmp: Path, once: bool = False) -> Iterator[Any]:
    """A factory fixture's body: ``make(env, **kw)`` -> ``start(env, tmp, **kw)``; every
    one it made is stopped after the test. ``once``: the one started with no environment,
    instead of the factory."""
    started: list[Any] = []

    def make(env: dict[str, str] | None = None, **kw: Any) -> Any:
        served = start(env or {}, tmp, **kw)
        started.append(served)
        return served

    yield make({}) if once else make
    for served in started:
        served.stop()


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Callable[..., InProcess]]:
    """Factory: ``app({"MODEL_URI": ...}, wait="/readyz")`` -> InProcess, main.py's app in
    this process with that environment; all closed after."""
    yield from _each_stopped(start_in_process, tmp_path)


@pytest.fixture(scope="session")
def demo_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcess]:
    """The bundled demo model in this process for the whole session (read-only use)."""
    yield from _each_stopped(start_in_process, tmp_path_factory.mktemp("demo-app"), once=True)


@pytest.fixture(scope="session")
def built_model(tmp_path_factory: pytest.TempPathFactory,
                pytestconfig: pytest.Config) -> BuiltModels:
    """``built_model(kind)`` -> what tests/model_kinds.py's builder returned, built once per
    session (kinds: tests.built_models.BUILDERS); its folder is read-only for tests."""
    return BuiltModels(session_root(tmp_path_factory, pytestconfig))


@pytest.fixture(scope="session")
def minilm_model(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Path:
    """all-MiniLM-L6-v2 exported once per session by ``model_export hf`` (tests/minilm.py):
    ``minilm.onnx`` beside its card and ``minilm.tokenizer.json``, in a folder that is
    read-only for tests."""
    from tests import minilm

    return built_once(session_root(tmp_path_factory, pytestconfig), "minilm",
                      minilm.hf_export)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """Factory: ``serve({"MODEL_URI": ...}, wait="/readyz")`` -> Served; all stopped after."""
    yield from _each_stopped(start_function, tmp_path)


@pytest.fixture(scope="session")
def demo_function(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One function serving the bundled demo model for the whole session (read-only use)."""
    yield from _each_stopped(start_function, tmp_path_factory.mktemp("demo"), once=True)


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[str]:
    """gcp-storage-emulator on a free port (in memory)."""
    from gcp_storage_emulator.server import create_server

    port = free_port()
    server = create_server("127.0.0.1", port, in_memory=True)
    server.start()
    host = f"http://127.0.0.1:{port}"
    previous = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = host  # the in-process SDK client reads it
    yield host
    if previous is None:
        os.environ.pop("STORAGE_EMULATOR_HOST", None)
    else:
        os.environ["STORAGE_EMULATOR_HOST"] = previous
    server.stop()


@pytest.fixture
def gcs_env(gcs_server: str) -> dict[str, str]:
    """Environment for a subprocess that talks to the GCS emulator."""
    return {"STORAGE_EMULATOR_HOST": gcs_server, "GOOGLE_CLOUD_PROJECT": "test-project"}


@pytest.fixture
def gcs_bucket(gcs_server: str, request: pytest.FixtureRequest):
    """A fresh bucket on the emulator, named after the test."""
    from google.cloud import storage

    client = storage.Client(project="test-project")
    name = "b-" + request.node.name.lower().replace("_", "-")[:40].strip("-[]") + f"-{free_port()}"
    return client.create_bucket(name)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """moto's server (S3, SQS, Lambda, ...) on a free port."""
    from moto.server import ThreadedMotoServer

    for key, value in AWS_FAKE.items():
        os.environ.setdefault(key, value)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_env(s3_server: str) -> dict[str, str]:
    """Environment for a subprocess that talks to moto (boto3 reads AWS_ENDPOINT_URL)."""
    return {**AWS_FAKE, "AWS_ENDPOINT_URL": s3_server}


def _demo_host(root: Path):  # -> (server, url)
    root.mkdir()
    shutil.copy(DEMO_MODEL, root / "iris.onnx")
    shutil.copy(DEMO_CARD, root / "iris.card.json")
    return start_file_server(root)


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """(directory, base URL) of a local HTTP server; the demo model is copied in."""
    server, url = _demo_host(tmp_path / "www")
    yield tmp_path / "www", url
    server.shutdown()


@pytest.fixture
def model_host(tmp_path: Path) -> Iterator[tuple[object, str]]:
    """(server, base URL) serving the demo model; ``server.hits`` / ``server.delay`` exposed."""
    server, url = _demo_host(tmp_path / "host")
    yield server, url
    server.shutdown()


@pytest.fixture(scope="session")
def pubsub_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The Pub/Sub emulator that ships with the gcloud CLI, on a free port; value is its
    ``host:port``, also set as PUBSUB_EMULATOR_HOST for the in-process client. Skipped, with
    the reason, where gcloud, java or the emulator component is missing."""
    import subprocess

    from tests.servers import stop_group, wait_http

    gcloud, java = shutil.which("gcloud"), shutil.which("java")
    if not gcloud or not java:
        pytest.skip(f"Pub/Sub emulator needs the gcloud CLI and Java 17 (gcloud: {gcloud}, "
                    f"java: {java})")
    root = tmp_path_factory.mktemp("pubsub-emulator")
    (root / "data").mkdir()
    host = f"127.0.0.1:{free_port()}"
    env = {**os.environ, "CLOUDSDK_CONFIG": str(root / "config"),
           "CLOUDSDK_CORE_DISABLE_PROMPTS": "1"}
    with open(root / "emulator.log", "wb") as log:
        proc = subprocess.Popen([gcloud, "beta", "emulators", "pubsub", "start",
                                 f"--host-port={host}", f"--data-dir={root / 'data'}"],
                                env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)  # gcloud starts java: stop both

    def stop() -> None:
        stop_group(proc)

    try:
        wait_http(f"http://{host}", 120, (200,), proc)
    except (RuntimeError, TimeoutError) as exc:
        stop()
        pytest.skip(f"Pub/Sub emulator did not start: {exc}\n"
                    f"{(root / 'emulator.log').read_text(errors='replace')[-2000:]}")
    previous = os.environ.get("PUBSUB_EMULATOR_HOST")
    os.environ["PUBSUB_EMULATOR_HOST"] = host
    yield host
    if previous is None:
        os.environ.pop("PUBSUB_EMULATOR_HOST", None)
    else:
        os.environ["PUBSUB_EMULATOR_HOST"] = previous
    stop()


@pytest.fixture
def aws_lambda(monkeypatch: pytest.MonkeyPatch, s3_server: str,
               tmp_path: Path) -> Iterator[tuple[object, str]]:
    """(boto3 S3 client, bucket) for ``main.lambda_handler`` called in-process against moto:
    MESSAGE_OUTPUT_URI is ``s3://BUCKET/results/``; the wiring is rebuilt from this test's
    environment (call ``tests.eventfiles.reset_runtime()`` after changing it)."""
    import boto3

    from tests.eventfiles import reset_runtime

    bucket = f"lambda-{free_port()}"
    for key, value in {**AWS_FAKE, "AWS_ENDPOINT_URL": s3_server, "MODEL_CACHE_DIR": str(tmp_path),
                       "MESSAGE_OUTPUT_URI": f"s3://{bucket}/results/"}.items():
        monkeypatch.setenv(key, value)
    reset_runtime()
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)
    yield s3, bucket
    reset_runtime()
