"""The request path's compiled modules (sim/compiled): used by the collector where built, never when
their source changed, and answering and storing every request exactly as the Python source does.

`make` builds them before `run` and `test`. Where no build exists (no C compiler, or pytest run
without make) the tests that need one skip, unless PLAYER_SIM_REQUIRE_COMPILED=1 (set by .ci/run),
where they fail: CI must test what users run.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from helpers import ROOT
from helpers.collector import KAVA_BEACON_URL, LEGACY_BEACON_URL, running_collector
from sim import compiled

BUILT = not compiled.stale_modules(compiled.compiled_dir())


def need_build() -> None:
    if BUILT:
        return
    if os.environ.get("PLAYER_SIM_REQUIRE_COMPILED") == "1":
        pytest.fail(
            f"no build of the request path in {compiled.compiled_dir()} (make runs python -m sim.compiled build)"
        )
    pytest.skip("the request path is not compiled here (`python -m sim.compiled build`, which make runs)")


def python(code: str, *args: str, **env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if k not in (compiled.PURE_ENV, compiled.DIR_ENV)}
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env={**environment, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


FILES = "import importlib, sys\nfor name in sys.argv[1:]: print(importlib.import_module(name).__file__)"


def test_the_collector_workers_run_the_compiled_request_path(tmp_path):
    need_build()
    with running_collector(tmp_path / "s.duckdb", "--workers", "2") as collector:
        import requests

        for i in range(20):  # new connections: both workers get some, and import both codecs
            for url in (LEGACY_BEACON_URL, KAVA_BEACON_URL):
                assert requests.get(collector.url + url.format(t=2, i=i), timeout=10).status_code == 200
        workers = [
            {Path(m.path).name for m in child.memory_maps()}
            for child in psutil.Process(collector.proc.pid).children(recursive=True)
            if "sim.collector.worker" in child.cmdline()
        ]
        assert len(workers) == 2
        for name in compiled.MODULES:
            loaded = [any(f.startswith(name + ".") for f in mapped) for mapped in workers]
            assert any(loaded), name  # the codecs are imported when a request first needs one
        assert all(any(f.startswith("sim.collector.app.") for f in mapped) for mapped in workers)


def test_a_source_that_changed_since_the_build_is_imported_as_python(tmp_path):
    need_build()
    # a copy of the build whose manifest says urlencoding was built from another source, and
    # whose compiled app is gone: both import as Python, the rest compiled
    for item in compiled.compiled_dir().iterdir():
        shutil.copy(item, tmp_path / item.name)
    manifest = json.loads((tmp_path / compiled.MANIFEST).read_text())
    manifest["sim.protocols.urlencoding"]["source_sha256"] = "0" * 64
    (tmp_path / manifest["sim.collector.app"]["file"]).unlink()
    (tmp_path / compiled.MANIFEST).write_text(json.dumps(manifest))
    names = ["sim.protocols.urlencoding", "sim.collector.app", "sim.protocols.dispatch"]
    files = python(FILES, *names, **{compiled.DIR_ENV: str(tmp_path)}).split()
    assert files[0].endswith("sim/protocols/urlencoding.py")
    assert files[1].endswith("sim/collector/app.py")
    assert files[2].startswith(str(tmp_path)) and files[2].endswith(".so")
    # and PLAYER_SIM_PURE_PYTHON=1 turns the build off altogether
    files = python(FILES, *names, **{compiled.DIR_ENV: str(tmp_path), compiled.PURE_ENV: "1"}).split()
    assert all(f.endswith(".py") for f in files)


ANSWER_ALL = r"""
import json, re, sys
import sim.collector.app as app
from sim.collector.app import Collector, CollectorConfig

collector = Collector(CollectorConfig())
results = []
for method, url, headers, body in json.load(open(sys.argv[1])):
    try:
        a = collector.handle(method, url, headers, None if body is None else body.encode("latin-1"), "10.0.0.1")
    except Exception as exc:
        results.append(["raises", type(exc).__name__, str(exc)])
        continue
    row = None if a.row is None else {k: v for k, v in a.row.items() if k not in ("ts", "received_at")}
    # the answer's times (executionTime, KAVA's time) differ from run to run: digits masked
    results.append([a.status, a.content_type, re.sub(rb"[0-9]+", b"#", a.body).decode("latin-1"), row])
print(json.dumps({"file": app.__file__, "results": [json.dumps(r, sort_keys=True, default=repr) for r in results]}))
"""

HOSTILE = [
    ("GET", "/api_v3/index.php?service=stats&action=collect&event:eventType=3&event:duration=" + "9" * 30, {}, None),
    ("GET", "/api_v3/index.php?service=stats&action=collect&event:eventType=3&event:duration=1." + "5" * 400, {}, None),
    ("GET", "/api_v3/index.php?service=stats&action=collect&event:eventType=abc&ks=secret", {}, None),
    ("GET", "/api_v3/index.php?service=nope&action=collect", {}, None),
    ("GET", "/api_v3/index.php?service=stats", {}, None),
    ("GET", "/api_v3/ks/djJ8MTIzfHNlY3JldA/service/stats/action/collect?event:eventType=2", {}, None),
    ("DELETE", "/api_v3/index.php?service=stats&action=collect", {}, None),
    (
        "POST",
        "/api_v3/index.php?service=analytics&action=trackEvent",
        {"content-type": "application/json"},
        '{"eventType": 3, "partnerId": 1, "errorDetails": {"data": [{"ks": "secret"}]}}',
    ),
    (
        "POST",
        "/api_v3/index.php?service=analytics&action=trackEvent",
        {"content-type": "application/json"},
        '{"eventType": "abc", "errorDetails": {"ks": "secret"}}',
    ),
    ("POST", "/api_v3/index.php", {"content-type": "application/json"}, '{"service": "stats", '),
    (
        "POST",
        "/api_v3/index.php?service=analytics&action=trackEvent",
        {"content-type": "application/x-www-form-urlencoded"},
        "eventType=2&partnerId=1&entryId=1_x&sessionId=a&eventIndex=1&position=NaN",
    ),
    (
        "GET",
        "/api_v3/index.php?service=stats&action=collect&event:eventType=2&event:partnerId=1",
        {"Referer": "https://site/p?ks=secret", "Cookie": "ks=secret; a=b", "X-Forwarded-For": "1.2.3.4, 5.6.7.8"},
        None,
    ),
]


def corpus() -> list:
    """The generator's beacons of every flavour and encoding, hand-made hostile requests, and seeded
    mutations of both (characters dropped, repeated, swapped for ones that mean something on the wire)."""
    from test_collector_fast_paths import _generator_requests

    requests = [
        (r.method, r.url, dict(r.headers), r.body.decode("latin-1") if r.body else None) for r in _generator_requests()
    ]
    requests += HOSTILE
    rng = random.Random(7)
    wire = list('&=:%[]{}",.-+e0129 ') + ["%3A", "%5B", "%00", "\u00e9", "ks", "1" * 25]
    mutated = []
    for _ in range(3000):
        method, url, headers, body = rng.choice(requests)
        target = "body" if body and rng.random() < 0.4 else "url"
        text = body if target == "body" else url
        at = rng.randrange(len(text))
        text = text[:at] + rng.choice(["", rng.choice(wire), text[at] * 3]) + text[at + 1 :]
        mutated.append((method, text, headers, body) if target == "url" else (method, url, headers, text))
    return requests + mutated


def test_compiled_and_python_answer_and_store_every_request_alike(tmp_path):
    need_build()
    requests = corpus()
    path = tmp_path / "corpus.json"
    path.write_text(json.dumps(requests))
    built = json.loads(python(ANSWER_ALL, str(path)))
    source = json.loads(python(ANSWER_ALL, str(path), **{compiled.PURE_ENV: "1"}))
    assert built["file"].endswith(".so") and source["file"].endswith("app.py")
    assert len(built["results"]) == len(requests) > 3500
    different = [(request, b, s) for request, b, s in zip(requests, built["results"], source["results"]) if b != s]
    assert not different, different[:3]
    stored = sum('"accepted": true' in r for r in source["results"])
    assert stored > 700  # most generator beacons are accepted: the comparison covers the accepted path too
