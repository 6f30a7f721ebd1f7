"""Attacks on a learner's signed cursors: forged, re-signed, edited and garbage tokens, and how decode answers them."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import inspect
import itertools
import string
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from functools import partial
from typing import Any

from course.checks import clock
from course.checks.base import expect, fail
from course.checks.learner import is_stub_error

# UTC+05:45 as a POSIX TZ string (no time-zone database needed): a local time labelled UTC is 5 h 45 min off.
AWAY_FROM_UTC = "CHK-05:45"


def machine_zone(zone: str = AWAY_FROM_UTC) -> AbstractContextManager[None]:
    """Run with the process's local time zone set to zone, so local-time mistakes show on a UTC machine too."""
    return clock.machine_zone(zone)


_GARBAGE = ["", "garbage", "!!!!", "a.b", "eyJhIjogMX0", "W10", "null", "...."]


async def _decode_or_reject(decode: Callable[..., Any], token: str) -> tuple[bool, Any]:
    """(True, value) when decode accepted token; (False, None) when it raised InvalidCursor; fail on other errors."""
    try:
        value = decode(token)
        return True, (await value) if inspect.isawaitable(value) else value
    except ValueError as exc:
        # InvalidCursor is the learner's own class (the exercise cell defines it): known by name, subclasses too.
        expect(
            any(kind.__name__ == "InvalidCursor" for kind in type(exc).__mro__),
            f"decode_cursor({token[:30]!r}) raised {type(exc).__name__}, not InvalidCursor: turn every way a cursor "
            "can be bad into InvalidCursor, the one error the API answers with 400 (another ValueError may come "
            "from anywhere, a bug included)",
        )
        return False, None
    except Exception as exc:  # noqa: BLE001 - any other exception type is the learner's bug to report
        if is_stub_error(exc):  # only the stub's own NotImplementedError("Exercise 4.2") means unsolved
            fail("not solved yet: replace the `raise NotImplementedError` line in decode_cursor with your code")
        fail(
            f"decode_cursor({token[:30]!r}) raised {type(exc).__name__}: raise InvalidCursor (a ValueError) for every "
            "bad cursor, so the API can answer 400 instead of 500"
        )


def _pair(value: Any) -> Any:
    return tuple(value) if isinstance(value, tuple | list) else value


def _b64decode(part: str) -> bytes | None:
    padded = part + "=" * (-len(part) % 4)
    for decoder in (base64.urlsafe_b64decode, base64.b64decode):
        try:
            return decoder(padded)
        except (binascii.Error, ValueError):
            continue
    return None


def _b64encode(raw: bytes, like: str) -> str:
    """raw in URL-safe base64, padded only when `like` (the part it replaces) was."""
    encoded = base64.urlsafe_b64encode(raw).decode()
    return encoded if like.endswith("=") else encoded.rstrip("=")


def _edit(part: str, old: str, new: str) -> str | None:
    """part with old replaced by new, in plain text or inside its base64; None when old is in neither."""
    if old in part:
        return part.replace(old, new)
    raw = _b64decode(part)
    if raw is None or old.encode() not in raw:
        return None
    return _b64encode(raw.replace(old.encode(), new.encode()), part)


def _forgeries(token: str, created_at: datetime, cursor_id: int) -> Iterator[tuple[str, str]]:
    """Edited cursors an attacker can make without the key: a value changed inside a base64 part, the signature dropped."""
    parts = token.split(".")
    edits = [
        (str(cursor_id), str(cursor_id + 1), "the id"),
        (str(created_at.year), str(created_at.year - 1), "created_at"),
    ]
    for index, part in enumerate(parts):
        for old, new, what in edits:
            raw = _b64decode(part)
            if raw is None or old.encode() not in raw:
                continue
            encoded = _b64encode(raw.replace(old.encode(), new.encode()), part)
            yield (
                ".".join([*parts[:index], encoded, *parts[index + 1 :]]),
                f"{what} inside was edited and re-encoded with plain base64",
            )
            if len(parts) > 1:
                yield encoded, f"{what} was edited and the signature dropped"
                yield part, "the signature was dropped"


def _similar(char: str) -> str:
    """Another character of the same kind (digit, lower, upper case), so an edited cursor still parses."""
    for alphabet in (string.digits, string.ascii_lowercase, string.ascii_uppercase):
        if char in alphabet:
            return alphabet[(alphabet.index(char) + 1) % len(alphabet)]
    return "A"


def _digest_texts(message: bytes, key: bytes | None) -> Iterator[tuple[str, Callable[[bytes, bytes | None], str]]]:
    """Each way a learner may have hashed message (plain hash or HMAC; hex or base64), with a function redoing it."""
    for name in ("sha256", "sha1", "md5", "sha512"):

        def digest(data: bytes, secret: bytes | None, name: str = name) -> bytes:
            return (
                hmac.new(secret, data, name).digest() if secret is not None else hashlib.new(name, data).digest()
            )

        raw = digest(message, key)
        for encode in (bytes.hex, lambda r: _b64encode(r, "="), lambda r: _b64encode(r, "")):
            yield encode(raw), partial(_redo, digest, encode)


def _redo(
    digest: Callable[[bytes, bytes | None], bytes],
    encode: Callable[[bytes], str],
    data: bytes,
    secret: bytes | None,
) -> str:
    return encode(digest(data, secret))


def _views(others: list[int], separator: str) -> list[Callable[[list[str]], bytes | None]]:
    """What a signature may be computed over or keyed with: the other parts joined, or one, as written or decoded."""
    views: list[Callable[[list[str]], bytes | None]] = [lambda ps: separator.join(ps[k] for k in others).encode()]
    for k in others:
        views += [partial(_part, k), partial(_decoded_part, k)]
    return views


def _part(k: int, parts: list[str]) -> bytes | None:
    return parts[k].encode()


def _decoded_part(k: int, parts: list[str]) -> bytes | None:
    return _b64decode(parts[k])


def _resigned(token: str, cursor_id: int) -> Iterator[str]:
    """Cursors with the id edited and the signature recomputed from the cursor alone, when its signature allows it.

    That works when the signature is a plain hash of the rest, or an HMAC whose key travels inside the cursor.
    """
    whole = _b64decode(token)
    layers = [(token, lambda text: text)]
    if whole is not None and whole.isascii():
        layers.append((whole.decode(), lambda text: _b64encode(text.encode(), token)))
    for (layer, wrap), separator in itertools.product(layers, ".:|~"):
        parts = layer.split(separator)
        if not 2 <= len(parts) <= 5:
            continue
        for index, signature in enumerate(parts):
            views = _views([k for k in range(len(parts)) if k != index], separator)
            for message_of, key_of_parts in itertools.product(views, [lambda ps: None, *views]):
                message = message_of(parts)
                for found, redo in _digest_texts(message or b"", key_of_parts(parts)):
                    if message is None or len(signature) < 8 or found[: len(signature)] != signature:
                        continue
                    edited = [
                        p if k == index else _edit(p, str(cursor_id), str(cursor_id + 1)) or p
                        for k, p in enumerate(parts)
                    ]
                    edited[index] = redo(message_of(edited) or b"", key_of_parts(edited))[: len(signature)]
                    yield wrap(separator.join(edited))


async def reject_forgeries(decode: Callable[..., Any], token: str, created_at: datetime, cursor_id: int) -> None:
    """decode must refuse every cursor made from token without the key (or give back the very same values)."""
    for forged, how in _forgeries(token, created_at, cursor_id):
        accepted, value = await _decode_or_reject(decode, forged)
        expect(
            not accepted or value is not None,
            f"decode_cursor returned None for a forged cursor ({how}) instead of raising: a caller that unpacks "
            "the result crashes (a 500), and one that checks for None must remember to. Raise InvalidCursor",
        )
        expect(not accepted, f"a forged cursor was accepted ({how}): sign the cursor and always verify it")
    for forged in _resigned(token, cursor_id):
        accepted, value = await _decode_or_reject(decode, forged)
        expect(
            not accepted or _pair(value) == (created_at, cursor_id),
            "a forged cursor was accepted: its signature could be recomputed from the cursor itself (a plain "
            "hash, or a key that travels inside it), so anyone can edit it and sign it again. Sign with a "
            "secret key that never leaves the server",
        )
    for position, char in enumerate(token):
        for other in dict.fromkeys(("A" if char != "A" else "B", _similar(char))):
            accepted, value = await _decode_or_reject(decode, token[:position] + other + token[position + 1 :])
            value = _pair(value)
            expect(
                not accepted or value == (created_at, cursor_id),
                f"a cursor with character {position} changed was accepted and gave {value!r}: "
                "anyone could edit it. Sign all of it and reject cursors whose signature does not match",
            )


async def reject_garbage(decode: Callable[..., Any]) -> None:
    """decode must raise InvalidCursor for strings that were never cursors."""
    for garbage in _GARBAGE:
        accepted, value = await _decode_or_reject(decode, garbage)
        expect(not accepted, f"decode_cursor({garbage!r}) returned {value!r}: garbage must raise InvalidCursor")
