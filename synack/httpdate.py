"""HTTP-date (RFC 9110 §5.6.7): the one formatter and parser every layer uses.

Pure functions over seconds since the epoch and field bytes: no I/O, no clock of its own
(``time`` is used only to convert, and for the current year when a caller passes no ``now``
to resolve an rfc850-date's two-digit year). A top-level module so that every layer may
import it: the static engine's ``last-modified`` comes from ``format_http_date`` (as should
the driver's cached ``date`` header in ``server/clock.py``: byte-identical output to
``email.utils.formatdate``), and the conditional request fields (``If-Modified-Since``,
``If-Unmodified-Since``, ``If-Range``) go through ``parse_http_date``, which returns None for
anything that is not a valid date and never raises.
"""

from __future__ import annotations

import calendar
import re
import time

__all__ = ["format_http_date", "parse_http_date", "clamp_to_http_date", "EARLIEST", "LATEST"]

#: The earliest instant formatted: the epoch. An mtime before 1970 is bogus on every file
#: system synack serves from, and not every cache copes with such a Last-Modified.
EARLIEST = 0
#: The latest instant an IMF-fixdate can carry: its year is four digits (9999-12-31 23:59:59).
LATEST = 253_402_300_799

_DAYS = (b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun")
_MONTHS = (b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun",
           b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec")
_MONTH_NUMBER = {name: number for number, name in enumerate(_MONTHS, 1)}


def format_http_date(seconds: float) -> bytes:
    """IMF-fixdate (RFC 9110 §5.6.7) for ``seconds`` since the epoch, e.g.
    ``Sun, 06 Nov 1994 08:49:37 GMT``; fractions are dropped.

    Instants outside ``EARLIEST``..``LATEST`` (and NaN) are clamped into it, so the result is
    always a valid HTTP-date whatever a file system reports as an mtime.
    """
    parts = time.gmtime(clamp_to_http_date(seconds))
    return b"%s, %02d %s %04d %02d:%02d:%02d GMT" % (
        _DAYS[parts.tm_wday], parts.tm_mday, _MONTHS[parts.tm_mon - 1], parts.tm_year,
        parts.tm_hour, parts.tm_min, parts.tm_sec,
    )


def clamp_to_http_date(seconds: float) -> int:
    """The whole second ``format_http_date`` shows for ``seconds``: clamped into
    ``EARLIEST``..``LATEST``, fractions dropped. Compare a Last-Modified against
    If-Modified-Since with this, so a validator the client echoes back still matches."""
    if EARLIEST <= seconds <= LATEST:
        return int(seconds)
    return LATEST if seconds > LATEST else EARLIEST  # NaN too: it compares false


_MONTH = rb"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_TIME = rb"([0-9]{2}):([0-9]{2}):([0-9]{2})"
# RFC 9110 §5.6.7: IMF-fixdate, and the obsolete rfc850-date and asctime-date forms that a
# recipient must still accept. [0-9], not \d: only ASCII digits are DIGIT.
_IMF_FIXDATE = re.compile(
    rb"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), ([0-9]{2}) " + _MONTH + rb" ([0-9]{4}) " + _TIME + rb" GMT"
)
_RFC850_DATE = re.compile(
    rb"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), ([0-9]{2})-" + _MONTH
    + rb"-([0-9]{2}) " + _TIME + rb" GMT"
)
_ASCTIME_DATE = re.compile(
    rb"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) " + _MONTH + rb" ([ 0-9][0-9]) " + _TIME + rb" ([0-9]{4})"
)


def parse_http_date(value: bytes | None, now: float | None = None) -> int | None:
    """Seconds since the epoch for an HTTP-date, or None when ``value`` is not a valid one.

    Every digit group has a fixed width, so no number is large; a date that does not exist
    (year 0000, 31 February, hour 24) is invalid like any other malformed value, which a
    recipient ignores (RFC 9110 §13.1.3, §13.1.4, §13.1.5). A leap second (``:60``) counts
    as ``:59``.

    Args:
        value: the field value (surrounding spaces and tabs are allowed).
        now: the current time, to resolve an rfc850-date's two-digit year (default: now).
    """
    if value is None:
        return None
    value = value.strip(b" \t")
    match = _IMF_FIXDATE.fullmatch(value)
    if match:
        day, month, year, hour, minute, second = match.groups()
        return _timestamp(int(year), month, int(day), hour, minute, second)
    match = _RFC850_DATE.fullmatch(value)
    if match:
        day, month, short_year, hour, minute, second = match.groups()
        return _timestamp(_full_year(int(short_year), now), month, int(day), hour, minute, second)
    match = _ASCTIME_DATE.fullmatch(value)
    if match:
        month, day, hour, minute, second, year = match.groups()
        return _timestamp(int(year), month, int(day.strip()), hour, minute, second)
    return None


def _full_year(short_year: int, now: float | None) -> int:
    # RFC 9110 §5.6.7: a two-digit year more than 50 years in the future is the most recent
    # past year with the same last two digits.
    current = time.gmtime(now).tm_year
    year = current - current % 100 + short_year
    if year > current + 50:
        year -= 100
    return year


def _timestamp(year: int, month: bytes, day: int, hour: bytes, minute: bytes, second: bytes) -> int | None:
    hours, minutes, seconds = int(hour), int(minute), int(second)
    # Year 0000 is a syntactically fine 4DIGIT that names no year (the calendar starts at 1).
    if not (1 <= year <= 9999 and 1 <= day <= 31 and hours < 24 and minutes < 60 and seconds <= 60):
        return None
    month_number = _MONTH_NUMBER[month]
    if day > calendar.monthrange(year, month_number)[1]:
        return None
    return calendar.timegm((year, month_number, day, hours, minutes, min(seconds, 59)))
