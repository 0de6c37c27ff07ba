"""A ks never reaches the store in clear, whatever channel carries it: only its digest is kept."""

from __future__ import annotations

import requests

LEGACY = "/api_v3/index.php?service=stats&action=collect&event:eventType=3&event:partnerId=1&event:entryId=0_x"


def test_no_channel_stores_a_ks_in_clear(collector):
    secrets = {}

    def secret(name: str) -> str:
        secrets[name] = f"djJ8MTIzfSECRET{name.upper()}xyz"
        return secrets[name]

    url = collector.url
    sends = [
        ("GET", f"{url}/api_v3/index.php/service/stats/action/collect/ks/{secret('path')}/event:eventType/3", {}, None),
        ("GET", f"{url}{LEGACY}&event:sessionId=a", {"Referer": f"https://site/page?x=1&ks={secret('referer')}"}, None),
        ("GET", f"{url}{LEGACY}&event:sessionId=b", {"Cookie": f"uv=1; ks={secret('cookie')}; b=2"}, None),
        ("GET", f"{url}{LEGACY}&event:sessionId=c&KS={secret('upper')}", {}, None),
        ("GET", f"{url}{LEGACY}&event:sessionId=d&event[ks]={secret('bracket')}", {}, None),
        ("GET", f"{url}{LEGACY}&event:sessionId=e&ks[]={secret('array')}", {}, None),
        ("GET", f"{url}{LEGACY}&event:sessionId=f&event%3Aks={secret('encoded')}", {}, None),
        (
            "POST",
            f"{url}/api_v3/index.php?service=analytics&action=trackEvent",
            {"Content-Type": "application/json"},
            f'{{"eventType": 3, "partnerId": 1, "entryId": "0_x", "Ks": "{secret("json")}"}}',
        ),
        (
            "POST",
            f"{url}/api_v3/index.php?service=analytics&action=trackEvent",
            {"Content-Type": "application/json"},
            f'{{"eventType": 3, "partnerId": 1, "entryId": "0_x", "sessionId": "g", '
            f'"errorDetails": {{"code": 1, "data": [{{"ks": "{secret("nested")}"}}]}}}}',
        ),
        (  # an eventType the codec refuses: the server-style reading flattens the object (errorDetails:ks)
            "POST",
            f"{url}/api_v3/index.php?service=analytics&action=trackEvent",
            {"Content-Type": "application/json"},
            f'{{"eventType": "abc", "partnerId": 1, "entryId": "0_x", "sessionId": "h", '
            f'"errorDetails": {{"ks": "{secret("flattened")}"}}}}',
        ),
    ]
    for method, target, headers, body in sends:
        requests.request(method, target, headers=headers, data=body, timeout=10)
    assert collector.stop() == 0
    rows = collector.rows("SELECT * FROM events")
    assert len(rows) == len(sends)
    text = repr(rows)
    leaked = [name for name, value in secrets.items() if "SECRET" + name.upper() in text]
    assert leaked == [], f"ks stored in clear from: {leaked}"
    assert sum(
        1 for r in rows if r["has_ks"] or "sha256:" in str(r["path"]) + str(r["page_url"]) + str(r["cookie"])
    ) == len(sends)


def test_a_number_beyond_a_double_is_stored_with_its_digits(collector):
    """html5's currentPoint is a float: 400 digits overflow it; the beacon is answered and stored, the
    digits kept in `extra` (it was an HTTP 500, and nothing stored)."""
    digits = "9" * 400
    answer = requests.get(
        f"{collector.url}/api_v3/index.php?service=stats&action=collect&clientTag=html5%3Av0.37.0"
        f"&event:eventType=4&event:partnerId=1&event:entryId=1_a&event:sessionId=big&event:currentPoint={digits}",
        timeout=10,
    )
    assert answer.status_code == 200
    assert collector.stop() == 0
    (row,) = collector.rows("SELECT * FROM events")
    assert row["currentPoint"] is None and digits in row["extra"]
    assert "codec_refused" in row["flags"]
