"""URL encodings as the players' JavaScript and Flash runtimes produce them, and PHP's parsing.

The server decodes every variant the same way (PHP query parsing), but the bytes on the
wire differ by player, and the access-log parsers care: they URL-decode the whole request
line once before splitting, which is why players encode free text twice.
"""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import quote, unquote, unquote_plus

# JavaScript encodeURIComponent leaves these unescaped (besides letters and digits).
_JS_SAFE = "-_.!~*'()"


def encode_uri_component(s: str) -> str:
    """JavaScript `encodeURIComponent`."""
    return quote(s, safe=_JS_SAFE)


def encode_uri_component_plus(s: str) -> str:
    """`encodeURIComponent` then `%20` -> `+`, as the v7 providers' `param()` does."""
    return encode_uri_component(s).replace("%20", "+")


def flash_url_variables(s: str) -> str:
    """Flash `URLVariables` encoding: everything but letters and digits is escaped (`_` -> `%5F`)."""
    # quote() always keeps `_.-~`; Flash escapes them too (observed: 0%5F4lxrbaw9, 3%2E0%3Av3%2E5)
    return quote(s, safe="").translate(_FLASH_ALSO_ESCAPED)


_FLASH_ALSO_ESCAPED = str.maketrans({c: f"%{ord(c):02X}" for c in "_.-~"})


def php_parse_query(query: str) -> list[tuple[str, str]]:
    """Pairs as PHP's query parsing yields them: `+` is a space, keys and values percent-decoded.

    The same pairs as `urllib.parse.parse_qsl(query, keep_blank_values=True)`, faster: a pair
    without `%` or `+` is only split (in a comprehension), and short escaped text (keys, client tags, ids: it
    repeats from request to request) is unquoted once. The collector parses every query it
    receives with this.
    """
    return [
        _decoded_pair(part) if "%" in part or "+" in part else part.partition("=")[::2]
        for part in query.split("&")
        if part
    ]


def _decoded_pair(part: str) -> tuple[str, str]:
    key, _, value = part.partition("=")
    if "%" in key or "+" in key:
        key = php_unquote(key)
    if "%" in value or "+" in value:
        value = php_unquote(value)
    return key, value


_SHORT = 96  # longer text (page URLs, referrers) rarely repeats: not worth a cache slot


def php_unquote(s: str) -> str:
    """PHP's `urldecode`: `+` is a space, `%XX` a UTF-8 byte (invalid sequences become U+FFFD)."""
    return _unquote_short(s) if len(s) <= _SHORT else unquote_plus(s)


_unquote_short = lru_cache(maxsize=1 << 14)(unquote_plus)


# JavaScript `escape()` leaves these unescaped (besides letters and digits).
_JS_ESCAPE_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789@*_+-./")


def js_escape(s: str) -> str:
    """JavaScript/ActionScript `escape()`: `%XX` for Latin-1, `%uXXXX` above it."""
    out = []
    for ch in s:
        if ch in _JS_ESCAPE_SAFE:
            out.append(ch)
        elif ord(ch) < 256:
            out.append(f"%{ord(ch):02X}")
        else:
            for unit in _utf16_units(ch):
                out.append(f"%u{unit:04X}")
    return "".join(out)


def js_unescape(s: str) -> str:
    """JavaScript `unescape()`: undoes `%XX` and `%uXXXX`; malformed escapes stay as they are."""
    if "%" not in s:
        return s
    if "%u" not in s and "%U" not in s:
        return unquote(s, encoding="latin-1")  # %XX is the code unit XX, not a UTF-8 byte
    units: list[int] = []
    i, n = 0, len(s)
    while i < n:
        ch = s[i]
        if ch == "%":
            if i + 6 <= n and s[i + 1] in "uU" and _is_hex(s[i + 2 : i + 6]):
                units.append(int(s[i + 2 : i + 6], 16))
                i += 6
                continue
            if i + 3 <= n and _is_hex(s[i + 1 : i + 3]):
                units.append(int(s[i + 1 : i + 3], 16))
                i += 3
                continue
        units.extend(_utf16_units(ch))
        i += 1
    return b"".join(u.to_bytes(2, "little") for u in units).decode("utf-16-le", errors="surrogatepass")


def js_number(x: float | int) -> str:
    """A number as JavaScript's `String(x)` writes it (`12` for 12.0, `0.5`, `1e-7`)."""
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int):
        return str(x)
    if x != x:
        return "NaN"
    if x in (float("inf"), float("-inf")):
        return "Infinity" if x > 0 else "-Infinity"
    if x == int(x) and abs(x) < 1e21:
        return str(int(x))
    text = repr(x)
    if "e" in text:  # Python writes 1e-07 / 1e+21, JavaScript 1e-7 / 1e+21
        mantissa, exponent = text.split("e")
        sign = exponent[0] if exponent[0] in "+-" else "+"
        text = f"{mantissa}e{sign}{int(exponent.lstrip('+-'))}"
    return text


def _is_hex(s: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in s)


def _utf16_units(ch: str) -> list[int]:
    data = ch.encode("utf-16-le", errors="surrogatepass")
    return [int.from_bytes(data[k : k + 2], "little") for k in range(0, len(data), 2)]
