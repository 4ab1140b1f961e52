"""Static files, directory listings: read a directory, render a small, clean HTML5 page.

Names are HTML-escaped where shown and percent-encoded where linked; links are relative, so
the page works under any mount point. Entries that could not be served (dotfiles when they
are hidden, names that are not UTF-8, symlinks that lead outside the root) are left out.
A page shows at most ``LISTING_LIMIT`` entries (``StaticSettings.listing_limit``) and says how
many more there are. Both functions are pure CPU and file-system work with no event loop:
``static`` runs them in the loop's executor, so a big directory never stalls other requests.
"""

from __future__ import annotations

import html
import itertools
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

from ..httpdate import clamp_to_http_date

__all__ = ["Entry", "Listing", "LISTING_LIMIT", "read_directory", "render_listing"]

#: The most entries one listing page shows: the first ones in listing order (directories
#: first, then by name), followed by a note saying how many were left out. Uncapped, a
#: 50,000-entry directory cost ~0.4 s of CPU and a 10 MB page per request; at this cap it is
#: one ``scandir`` and sort of every name (~30 ms) plus a ``stat`` and a table row for these
#: few (~40 ms, ~1 MB of HTML). A person scrolls no further; a program should not scrape a
#: listing. ``StaticSettings.listing_limit`` overrides it.
LISTING_LIMIT = 5000


@dataclass(frozen=True, slots=True)
class Entry:
    name: str
    is_dir: bool
    size: int
    mtime: float


@dataclass(frozen=True, slots=True)
class Listing:
    """The entries a listing page shows, and how many more the directory holds."""

    entries: list[Entry]
    #: Names past the cap that are not shown (counted before their ``stat``, so the few of
    #: them that would have been left out anyway, such as dangling symlinks, count too).
    omitted: int = 0


def read_directory(fd: int, show_hidden: bool, allowed: Callable[[str], bool],
                   limit: int = LISTING_LIMIT) -> Listing:
    """The servable entries of the open directory ``fd``: directories first, then by name,
    at most ``limit`` of them.

    Every name is read and sorted (cheap: ``scandir`` knows each entry's type without a
    ``stat`` on most file systems), but only the entries shown are ``stat``-ed.

    Args:
        fd: an open directory descriptor (not closed here).
        show_hidden: list names starting with ``.``.
        allowed: called with the name of each symlink; False leaves it out (it resolves
            outside the root, or to a hidden path).
        limit: the most entries returned (``LISTING_LIMIT`` unless configured).
    """
    directories, files, symlinks = _names(fd, show_hidden)
    # Two lists of str sort several times faster than one list of (is_dir, name) tuples.
    directories.sort()
    files.sort()
    entries: list[Entry] = []
    examined = 0
    for name in itertools.chain(directories, files):
        if len(entries) >= limit:
            break
        examined += 1
        entry = _entry(fd, name, name in symlinks, allowed)
        if entry is not None:
            entries.append(entry)
    return Listing(entries, len(directories) + len(files) - examined)


def _names(fd: int, show_hidden: bool) -> tuple[list[str], list[str], set[str]]:
    """The listable names of directory ``fd``: (directories, the rest, which are symlinks).
    A symlink counts as what it points at, as it is shown."""
    directories: list[str] = []
    files: list[str] = []
    symlinks: set[str] = set()
    with os.scandir(fd) as scan:
        for item in scan:
            name = item.name
            if not show_hidden and name.startswith("."):
                continue
            if not name.isascii():
                try:
                    name.encode("utf-8")
                except UnicodeEncodeError:
                    continue  # an undecodable name (surrogate-escaped): no URL can reach it
            try:
                is_dir, is_symlink = item.is_dir(), item.is_symlink()
            except OSError:
                continue  # gone since the scan, or unreadable
            (directories if is_dir else files).append(name)
            if is_symlink:
                symlinks.add(name)
    return directories, files, symlinks


def _entry(fd: int, name: str, is_symlink: bool, allowed: Callable[[str], bool]) -> Entry | None:
    try:
        if is_symlink and not allowed(name):
            return None
        status = os.stat(name, dir_fd=fd)
    except OSError:
        return None  # dangling symlink, or gone since the scan
    is_dir = stat.S_ISDIR(status.st_mode)
    if not is_dir and not stat.S_ISREG(status.st_mode):
        return None
    return Entry(name, is_dir, status.st_size, status.st_mtime)


_STYLE = """\
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;\
max-width:60rem;padding:0 1rem;color:#222;background:#fff}
h1{font-size:1.3rem;font-weight:600;word-break:break-all}
table{border-collapse:collapse;width:100%}
th,td{padding:.3rem .6rem;text-align:left;border-bottom:1px solid #eee}
th{font-weight:600;color:#555;border-bottom:2px solid #ddd}
td.size,th.size{text-align:right;white-space:nowrap}
td.time{white-space:nowrap;color:#555}
a{color:#0645ad;text-decoration:none}a:hover{text-decoration:underline}
p.omitted{color:#555;font-style:italic}
@media (prefers-color-scheme:dark){body{color:#ddd;background:#111}a{color:#8ab4f8}\
th,td{border-color:#333}td.time,th,p.omitted{color:#aaa}}"""


def render_listing(display_path: str, listing: Listing, has_parent: bool) -> bytes:
    """The HTML page listing ``listing`` of the directory at URL path ``display_path``."""
    title = html.escape(f"Index of {display_path}")
    rows = []
    if has_parent:
        rows.append('<tr><td><a href="../">../</a></td><td class="size"></td><td class="time"></td></tr>')
    rows.extend(_row(entry) for entry in listing.entries)
    page = (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n<style>\n{_STYLE}\n</style>\n</head>\n<body>\n"
        f"<h1>{title}</h1>\n<table>\n"
        '<thead><tr><th>Name</th><th class="size">Size</th><th>Modified (UTC)</th></tr></thead>\n'
        "<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>\n" + _omitted_note(listing)
        + "</body>\n</html>\n"
    )
    return page.encode("utf-8")


def _row(entry: Entry) -> str:
    suffix = "/" if entry.is_dir else ""
    # quote(safe="") encodes ":" too, so a name like "a:b" cannot read as a URL scheme.
    href = html.escape(quote(entry.name, safe="") + suffix)
    name = html.escape(entry.name + suffix)
    # Clamped like Last-Modified: a tmpfs mtime can be past what gmtime() converts.
    moment = time.gmtime(clamp_to_http_date(entry.mtime))
    day = f"{moment.tm_year:04d}-{moment.tm_mon:02d}-{moment.tm_mday:02d}"
    minute = f"{moment.tm_hour:02d}:{moment.tm_min:02d}"
    size = "" if entry.is_dir else f'<span title="{entry.size} bytes">{_human_size(entry.size)}</span>'
    return (
        f'<tr><td><a href="{href}">{name}</a></td><td class="size">{size}</td>'
        f'<td class="time"><time datetime="{day}T{minute}:{moment.tm_sec:02d}Z">{day} {minute}</time></td></tr>'
    )


def _omitted_note(listing: Listing) -> str:
    if not listing.omitted:
        return ""
    shown = len(listing.entries)
    return (f'<p class="omitted">Only the first {shown:,} entries are listed; '
            f"{listing.omitted:,} more are not shown.</p>\n")


def _human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            return f"{value:.1f} {unit}"
    return f"{size} B"  # pragma: no cover
