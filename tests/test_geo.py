"""The geolocation table: drawn addresses geolocate back to their country, networks never overlap."""

from __future__ import annotations

import ipaddress

import numpy as np
import pyarrow as pa
import pytest

from sim.geo import GeoError, dotted, geo_table, parse_ipv4

COUNTRIES = ["US", "GB", "DE", "FR", "IN", "BR", "CA", "AU", "JP", "IL", "AD", "NZ"]


@pytest.fixture(scope="module")
def table():
    return geo_table()


def test_the_table_is_geolite2_countries_from_the_installed_package(table):
    assert table.source.startswith("MAXMIND:GeoLite2-Country")
    assert len(table.starts) > 400_000 and len(table.codes) > 240
    assert {"US", "GB", "DE", "IN", "BR"} <= set(table.codes)


def test_networks_are_sorted_and_distinct_countries_never_share_addresses(table):
    assert (np.diff(table.starts) > 0).all()
    overlap = np.flatnonzero(table.ends[:-1] > table.starts[1:])
    # Only reserved space nests (240.0.0.0/4 holds the 255.255.255.255 broadcast): no country is involved.
    assert all(table.country[i] == -1 and table.country[i + 1] == -1 for i in overlap)
    assert len(overlap) <= 1


@pytest.mark.parametrize("country", COUNTRIES)
def test_addresses_of_a_country_geolocate_back_to_it(table, country):
    ips = table.draw(country, 5000, np.random.default_rng(11))
    assert table.countries(ips).to_pylist() == [country] * 5000
    assert all(ipaddress.ip_address(ip).is_global for ip in ips[:500])


def test_two_countries_draw_from_disjoint_networks(table):
    rng = np.random.default_rng(5)
    networks = {}
    for country in COUNTRIES:
        addresses, _ = parse_ipv4(table.draw(country, 2000, rng))
        networks[country] = set((np.searchsorted(table.starts, addresses, side="right") - 1).tolist())
    for a in COUNTRIES:
        for b in COUNTRIES:
            if a < b:
                assert not networks[a] & networks[b], (a, b)


def test_draws_are_deterministic_for_a_seed_and_spread_over_many_networks(table):
    a = table.draw("GB", 3000, np.random.default_rng(9))
    assert a == table.draw("GB", 3000, np.random.default_rng(9))
    assert a != table.draw("GB", 3000, np.random.default_rng(10))
    first_octets = {ip.split(".")[0] for ip in a}
    assert len(first_octets) > 40 and len(set(a)) > 2990


def test_hosts_of_wide_networks_never_end_in_0_or_255(table):
    ips = table.draw("DE", 20000, np.random.default_rng(2))
    addresses, _ = parse_ipv4(ips)
    row = np.searchsorted(table.starts, addresses, side="right") - 1
    wide = (table.ends - table.starts)[row] >= 256
    last = addresses[wide] & 0xFF
    assert wide.mean() > 0.9 and last.min() >= 1 and last.max() <= 254


def test_lookups_agree_with_geoip2fasts_own_lookup(table):
    from geoip2fast import GeoIP2Fast

    reference = GeoIP2Fast()
    ips = dotted(np.random.default_rng(4).integers(0, 2**32, 3000))
    for ip, ours in zip(ips, table.countries(ips).to_pylist()):
        theirs = reference.lookup(ip).country_code
        if ours == "AD":
            continue  # geoip2fast 1.2.2 reports its first country (Andorra) as private: index < 16
        assert ours == (None if theirs.startswith("<") or theirs == "--" else theirs), ip


def test_what_is_not_a_public_ipv4_address_has_no_country(table):
    ips = [
        "8.8.8.8",
        "10.1.2.3",
        "127.0.0.1",
        "192.168.0.9",
        "not an ip",
        "",
        None,
        "1.2.3",
        "256.1.1.1",
        "2001:db8::1",
        " 81.2.69.142 ",
        "::ffff:81.2.69.142",
    ]
    assert table.countries(ips).to_pylist() == ["US", None, None, None, None, None, None, None, None, None, "GB", "GB"]
    assert table.countries(pa.chunked_array([["8.8.8.8"], ["81.2.69.142"]])).to_pylist() == ["US", "GB"]
    assert table.countries([]).to_pylist() == []


def test_an_unknown_country_is_a_clear_error(table):
    assert not table.has("XQ") and table.has("gb")
    with pytest.raises(GeoError, match="'XQ' has no networks"):
        table.draw("XQ", 3, np.random.default_rng(1))


def test_a_run_after_the_first_reads_the_same_table_from_the_user_cache(monkeypatch, tmp_path):
    from sim import geo

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = geo._cache_file()
    assert path.parent == tmp_path / "player-sim" and not path.exists()
    parsed = geo._read_data_file()
    geo._write_cache(path, parsed)
    assert path.exists() and list(path.parent.iterdir()) == [path]  # no temporary left behind
    cached = geo._read_cache(path)
    for name in ("starts", "ends", "country"):
        a, b = getattr(parsed, name), getattr(cached, name)
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert cached.codes == parsed.codes and cached.source == parsed.source
    path.write_bytes(b"not an npz")  # a damaged copy is ignored: the data file is read again
    assert geo._read_cache(path) is None


def test_an_unwritable_cache_folder_costs_only_the_copy(monkeypatch, tmp_path):
    from sim import geo

    (tmp_path / "player-sim").write_text("a file where the folder would be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = geo._cache_file()
    geo._write_cache(path, geo._read_data_file())  # no error
    assert geo._read_cache(path) is None
