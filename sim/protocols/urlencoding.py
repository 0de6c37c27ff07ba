"""URL encodings as the players' JavaScript and Flash runtimes produce them, and PHP's parsing.

The server decodes every variant the same way (PHP query parsing), but the bytes on the
wire differ by player, and the access-log parsers care: they URL-decode the whole request
line once before splitting, which is why players encode free text twice.
"""
from __future__ import annotations

from urllib.parse import parse_qsl, quote, unquote_plus

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
    return quote(s, safe="")


def php_parse_query(query: str) -> list[tuple[str, str]]:
    """Pairs as PHP's query parsing yields them: `+` is a space, keys and values percent-decoded."""
    return parse_qsl(query, keep_blank_values=True)


def php_unquote(s: str) -> str:
    return unquote_plus(s)
