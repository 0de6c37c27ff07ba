"""The live-load schedule: workload models, time scaling, lateness figures, ledger, safety."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from sim.load.plan import OptionError, add_arguments, check_options, is_kaltura_host, scenario_specs
from sim.load.schedule import ClosedArrivals, OpenArrivals, Timebase, partition_seed
from sim.load.sender import LatenessHistogram, Ledger, worker_ledger_path
from sim.protocols.beacons import BeaconChunk, Strings, take_rows


def options(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


# --- workload models -----------------------------------------------------------------------


def test_open_model_arrivals_keep_the_target_rate_within_two_percent():
    rng = np.random.default_rng(3)
    arrivals = OpenArrivals(rate=250.0, rng=rng, start=1000.0)
    starts = np.concatenate([arrivals.assign(np.zeros(10_000)) for _ in range(10)])
    measured = len(starts) / (starts[-1] - 1000.0)
    assert abs(measured / 250.0 - 1) < 0.02


def test_open_model_gaps_are_exponential_not_evenly_spaced():
    starts = OpenArrivals(rate=10.0, rng=np.random.default_rng(4), start=0.0).assign(np.zeros(50_000))
    gaps = np.diff(starts)
    # exponential: coefficient of variation 1 (an evenly spaced schedule would give 0)
    assert abs(gaps.std() / gaps.mean() - 1) < 0.03


def test_open_model_arrivals_ignore_session_lengths():
    a = OpenArrivals(rate=5.0, rng=np.random.default_rng(5), start=0.0).assign(np.full(1000, 1e6))
    b = OpenArrivals(rate=5.0, rng=np.random.default_rng(5), start=0.0).assign(np.zeros(1000))
    np.testing.assert_array_equal(a, b)


def test_closed_model_never_has_more_sessions_running_than_viewers():
    viewers, rng = 50, np.random.default_rng(6)
    arrivals = ClosedArrivals(viewers, rng, start=0.0, idle_gap=2.0, ramp_up=5.0)
    lengths = rng.uniform(1, 60, 5000)
    starts = arrivals.assign(lengths)
    events = np.concatenate(
        [np.stack([starts, np.ones(len(starts))], 1), np.stack([starts + lengths, -np.ones(len(starts))], 1)]
    )
    events = events[np.lexsort((events[:, 1], events[:, 0]))]  # an end before a start at the same time
    running = np.cumsum(events[:, 1])
    assert running.max() == viewers


def test_closed_model_viewer_starts_the_next_session_after_an_idle_gap():
    arrivals = ClosedArrivals(1, np.random.default_rng(7), start=0.0, idle_gap=3.0, ramp_up=0.0)
    lengths = np.full(2000, 10.0)
    starts = arrivals.assign(lengths)
    gaps = np.diff(starts) - 10.0
    assert (gaps >= 0).all()
    assert abs(gaps.mean() / 3.0 - 1) < 0.1


def test_closed_model_first_sessions_spread_over_the_ramp_up():
    starts = ClosedArrivals(1000, np.random.default_rng(8), start=100.0, ramp_up=20.0).assign(np.full(1000, 1e9))
    assert starts.min() >= 100.0 and starts.max() <= 120.0
    assert abs(np.median(starts) - 110.0) < 1.5


def test_closed_model_rate_cap_spaces_session_starts():
    arrivals = ClosedArrivals(100, np.random.default_rng(9), start=0.0, ramp_up=0.0, max_rate=5.0)
    starts = arrivals.assign(np.full(300, 1.0))
    assert np.diff(starts).min() >= 0.2 - 1e-9


def test_time_scale_maps_simulated_seconds_to_fewer_wall_seconds():
    tb = Timebase(t0=1_000.0, scale=10.0)
    assert tb.to_wall(1_100.0) == pytest.approx(1_010.0)
    assert tb.to_sim(tb.to_wall(1_234.5)) == pytest.approx(1_234.5)


def test_each_worker_and_epoch_of_the_endless_stream_has_its_own_seed():
    assert len({partition_seed(7, worker, epoch) for worker in range(8) for epoch in range(16)}) == 128


# --- rows of a beacon chunk ----------------------------------------------------------------


def test_taking_rows_keeps_every_column_aligned():
    chunk = BeaconChunk(
        protocol="kava",
        columns={
            "eventType": np.array([1, 2, 3, 99]),
            "entryId": Strings(np.array([0, 1, 0, -1], np.int32), np.array(["a", "b"], object)),
        },
        session=np.array([0, 0, 1, 1], np.int32),
        send_t=np.array([1.0, 2.0, 3.0, 4.0]),
        ledger_session=Strings(np.array([0, 0, 1, 1], np.int32), np.array(["s0", "s1"], object)),
        ledger_index=np.array([1, 2, 1, 2], np.int64),
    )
    part = take_rows(chunk, np.array([3, 1]))
    assert part.columns["eventType"].tolist() == [99, 2]
    assert [part.columns["entryId"].get(i) for i in range(2)] == [None, "b"]
    assert part.send_t.tolist() == [4.0, 2.0]
    assert [part.ledger_session.get(i) for i in range(2)] == ["s1", "s0"]
    assert part.ledger_index.tolist() == [2, 2]


# --- lateness and the ledger ---------------------------------------------------------------


def test_lateness_quantiles_come_from_millisecond_buckets():
    hist = LatenessHistogram()
    for ms in range(1, 1001):  # 1 ms .. 1000 ms
        hist.add(ms / 1000.0 - 0.0005)
    assert hist.quantile(0.5) == pytest.approx(0.500, abs=0.002)
    assert hist.quantile(0.99) == pytest.approx(0.990, abs=0.002)
    assert hist.max == pytest.approx(0.9995)
    assert hist.over(0.25) == 750


def test_early_sends_count_as_on_time():
    hist = LatenessHistogram()
    hist.add(-0.3)
    assert hist.quantile(0.99) == 0.0 and hist.max == 0.0 and hist.over(0.001) == 0


def test_merged_histograms_add_counts_and_keep_the_larger_maximum():
    a, b = LatenessHistogram(), LatenessHistogram()
    a.add(0.010)
    b.add(0.020)
    b.add(2.5)
    a.merge_sparse(b.to_sparse())
    assert a.count == 3 and a.max == 2.5


def test_ledger_appears_only_when_closed(tmp_path):
    from sim.load.schedule import Outgoing
    from sim.protocols.beacons import WireRequest

    path = tmp_path / "ledger.jsonl"
    ledger = Ledger(path)
    out = Outgoing(
        "kava 3 PLAY", "kava", WireRequest("POST", "/api_v3/index.php?x=1", {"A": "b"}, b'{"a":1}'), "s:1", 0
    )
    ledger.write(1.5, out, None)
    ledger.write(2.5, out, "HTTP 503")
    assert not path.exists()
    ledger.close()
    import orjson

    lines = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert lines[0] == {
        "ts": 1.5,
        "method": "POST",
        "url": "/api_v3/index.php?x=1",
        "headers": {"A": "b"},
        "body": '{"a":1}',
        "protocol": "kava",
        "key": "s:1",
    }
    assert lines[1]["failed"] is True and lines[1]["error"] == "HTTP 503"
    assert list(tmp_path.iterdir()) == [path]


def test_an_aborted_ledger_leaves_no_file(tmp_path):
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.abort()
    assert list(tmp_path.iterdir()) == []


def test_each_worker_writes_its_own_ledger():
    assert worker_ledger_path("out/ledger.jsonl", None) == "out/ledger.jsonl"
    assert worker_ledger_path("out/ledger.jsonl", 1) == "out/ledger.w1.jsonl"
    assert worker_ledger_path("ledger", 0) == "ledger.w0"


# --- options and safety --------------------------------------------------------------------


def test_scenarios_take_optional_weights():
    assert scenario_specs(["a.yaml", "b.yaml:3", "c:\\x.yaml"]) == [
        ("a.yaml", 1.0),
        ("b.yaml", 3.0),
        ("c:\\x.yaml", 1.0),
    ]
    with pytest.raises(OptionError, match="weight"):
        scenario_specs(["a.yaml:0"])


def test_kaltura_hosts_are_recognised():
    assert is_kaltura_host("https://stats.kaltura.com")
    assert is_kaltura_host("http://analytics.kaltura.com:443/api_v3")
    assert is_kaltura_host("https://kaltura.com")
    assert not is_kaltura_host("http://127.0.0.1:8080")
    assert not is_kaltura_host("https://notkaltura.com")


@pytest.mark.parametrize(
    "host",
    [
        "https://stats\uff0ekaltura\uff0ecom",  # fullwidth full stops
        "https://stats\u3002kaltura\u3002com",  # ideographic full stops
        "https://stats.kal\u00adtura.com",  # soft hyphen
        "https://stats.kal\u200btura.com/api_v3",  # zero-width space
        "https://\uff4b\uff41\uff4c\uff54\uff55\uff52\uff41.com",  # fullwidth letters
        "http://STATS.KALTURA.COM.:80",  # upper case, trailing dot
        "http://stats%2ekaltura.com",  # percent-escaped dot
    ],
)
def test_the_kaltura_rail_compares_names_as_the_resolver_sees_them(host):
    assert is_kaltura_host(host)
    with pytest.raises(OptionError, match="--i-mean-kaltura"):
        check_options(options(), host)


def test_names_that_only_contain_kaltura_are_not_kaltura():
    assert not is_kaltura_host("http://kaltura.com.example.org")
    assert not is_kaltura_host("http://kaltura\uff0ecom-mirror.example.org")


def test_kaltura_needs_explicit_consent():
    with pytest.raises(OptionError, match="--i-mean-kaltura"):
        check_options(options(), "https://stats.kaltura.com")


def test_kaltura_needs_a_partner_id():
    with pytest.raises(OptionError, match="--partner-id"):
        check_options(options("--i-mean-kaltura"), "https://analytics.kaltura.com")


def test_kaltura_rate_is_capped_unless_raised():
    opts = options("--i-mean-kaltura", "--partner-id", "123", "--session-rate", "50")
    with pytest.raises(OptionError, match="--max-rate"):
        check_options(opts, "https://analytics.kaltura.com")
    check_options(
        options("--i-mean-kaltura", "--partner-id", "123", "--session-rate", "50", "--max-rate", "60"),
        "https://analytics.kaltura.com",
    )


def test_kaltura_is_never_time_scaled():
    with pytest.raises(OptionError, match="--time-scale"):
        check_options(
            options("--i-mean-kaltura", "--partner-id", "1", "--time-scale", "10"), "https://stats.kaltura.com"
        )


def test_the_local_collector_needs_no_consent():
    check_options(options("--session-rate", "500", "--time-scale", "100"), "http://127.0.0.1:8080")


def test_bad_values_name_their_option():
    with pytest.raises(OptionError, match="--session-rate"):
        check_options(options("--session-rate", "0"), "http://127.0.0.1:8080")
    with pytest.raises(OptionError, match="--viewers"):
        check_options(options("--workload", "closed", "--viewers", "0"), "http://127.0.0.1:8080")


# --- the schedule over real sessions and beacons -------------------------------------------


@pytest.fixture(scope="module")
def components():
    from pathlib import Path

    from sim.scenario.loader import load

    return load(Path(__file__).resolve().parents[1] / "scenarios" / "typical-vod.yaml")


def make_schedule(components, protocol: str, *, rate: float = 50.0, scale: float = 20.0, drop_after=None):
    from sim.load.schedule import Schedule, protocol_adapters, session_stream

    t0 = 1_000_000.0
    return Schedule(
        session_stream(components, 3, chunk_size=64),
        OpenArrivals(rate, np.random.default_rng(1), t0),
        Timebase(t0, scale),
        protocol_adapters(protocol),
        drop_after=drop_after,
    )


def test_every_scheduled_beacon_is_handed_out_once_in_time_order_across_compactions(components, monkeypatch):
    from sim.load.schedule import BeaconQueue

    monkeypatch.setattr(BeaconQueue, "COMPACT_MIN", 16)  # compact often
    schedule = make_schedule(components, "legacy")
    schedule.refill(1_000_000.0 + 30.0, budget=4)
    expected = sorted(q.codec.ledger_key(q.codec.beacon_at(q.chunk, i)) for q in schedule.queues for i in range(len(q)))
    keys, times = [], []
    now = 1_000_000.0
    while schedule.pending:
        now += 0.5
        for t, queue, row in schedule.pop_due(now):
            out = queue.render(row, late=0.0)
            keys.append(out.key)
            times.append(t)
        schedule.compact()
    assert sorted(keys) == expected
    assert times == sorted(times)


def test_a_session_that_cannot_start_on_time_is_dropped_whole(components):
    schedule = make_schedule(components, "legacy", drop_after=1.0)
    schedule.refill(1_000_000.0, budget=1)
    queue = schedule.queues[0]
    due = schedule.pop_due(1_000_000.0 + 10_000.0)
    first_session = int(queue.chunk.session[due[0][2]])
    rendered = [queue.render(row, late=5.0) for _, q, row in due if int(q.chunk.session[row]) == first_session]
    assert rendered and all(r is None for r in rendered)
    assert schedule.stats.dropped_sessions >= 1 and schedule.stats.skipped >= len(rendered)


def test_late_sends_of_a_started_session_still_go_out(components):
    schedule = make_schedule(components, "legacy", drop_after=1.0)
    schedule.refill(1_000_000.0, budget=1)
    due = schedule.pop_due(1_000_000.0 + 10_000.0)
    t, queue, row = due[0]
    assert queue.render(row, late=0.0) is not None  # the session started on time
    later = [r for _, q, r in due[1:] if q.chunk.session[r] == queue.chunk.session[row]]
    assert later and all(queue.render(r, late=60.0) is not None for r in later)


def _kava_session(components):
    schedule = make_schedule(components, "kava")
    schedule.refill(1_000_000.0, budget=1)
    due = schedule.pop_due(1_000_000.0 + 10_000.0)
    queue = due[0][1]
    by_session: dict[int, list[int]] = {}
    for _, q, row in due:
        by_session.setdefault(int(q.chunk.session[row]), []).append(row)
    # a session that plays long enough to send VIEWs
    rows = max(by_session.values(), key=lambda rs: sum(int(queue.chunk.columns["eventType"][r]) == 99 for r in rs))
    return queue, rows


def test_kava_first_answer_time_becomes_session_start_time_of_later_beacons(components):
    queue, rows = _kava_session(components)
    first = queue.render(rows[0], late=0.0)
    assert b"sessionStartTime" not in (first.request.body or b"")
    queue.on_response(first, b'{"time": 1234567.891, "viewEventsEnabled": true}')
    later = [queue.render(r, late=0.0) for r in rows[1:4]]
    import orjson

    stamps = [orjson.loads(o.request.body).get("sessionStartTime") for o in later if o is not None]
    assert 1234567.891 in stamps  # the server's float time, echoed as given


def test_kava_view_events_disabled_stops_that_sessions_views(components):
    queue, rows = _kava_session(components)
    first = queue.render(rows[0], late=0.0)
    queue.on_response(first, b'{"time": 1234567, "viewEventsEnabled": false}')
    views = [r for r in rows[1:] if int(queue.chunk.columns["eventType"][r]) == 99]
    assert views and all(queue.render(r, late=0.0) is None for r in views)
    assert queue.stats.views_suppressed == len(views)


def test_wire_faults_get_stable_names():
    import errno as e

    from sim.load.sender import BadResponse, failure_kind

    assert failure_kind(ConnectionRefusedError(e.ECONNREFUSED, "refused")) == "connection refused"
    assert failure_kind(TimeoutError("timed out")) == "timeout"
    assert failure_kind(ConnectionResetError(e.ECONNRESET, "reset by peer")) == "connection reset"
    assert failure_kind(BrokenPipeError(e.EPIPE, "broken pipe")) == "connection reset"
    assert failure_kind(BadResponse(b"SSH-2.0")) == "bad response"
    assert failure_kind(OSError(e.EHOSTUNREACH, "No route to host")) == "no route to host"


def test_split_chunks_keep_sessions_and_actions_together(components):
    from sim.load.schedule import split_chunk
    from sim.player.model import generate_sessions

    chunk = next(generate_sessions(components, 5, sessions=700, days=1, chunk_size=700))
    pieces = list(split_chunk(chunk, 128))
    assert [p.n_sessions for p in pieces[:-1]] == [128] * (len(pieces) - 1)
    assert sum(p.n_sessions for p in pieces) == chunk.n_sessions
    for p in pieces:
        p.check_columns()
        assert p.sessions["first_action"][0] == 0
        for i in (0, p.n_sessions - 1):
            acts = p.actions_of(i)
            assert (acts["session"] == i).all() and acts["kind"][-1] == 25  # ends with QUIT
    np.testing.assert_array_equal(np.concatenate([p.actions["t"] for p in pieces]), chunk.actions["t"])
    assert len({p.seed.spawn_key for p in pieces}) == len(pieces)
