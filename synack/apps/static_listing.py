"""Static files, directory listings: read a directory, render a small, clean HTML5 page.

Names are HTML-escaped where shown and percent-encoded where linked; links are relative, so
the page works under any mount point. Entries that could not be served (dotfiles when they
are hidden, names that are not UTF-8, symlinks that lead outside the root) are left out.
"""

from __future__ import annotations

import html
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

from ..httpdate import clamp_to_http_date

__all__ = ["Entry", "read_directory", "render_listing"]


@dataclass(frozen=True, slots=True)
class Entry:
    name: str
    is_dir: bool
    size: int
    mtime: float


def read_directory(fd: int, show_hidden: bool, allowed: Callable[[str], bool]) -> list[Entry]:
    """The servable entries of the open directory ``fd``: directories first, then by name.

    Args:
        fd: an open directory descriptor (not closed here).
        show_hidden: list names starting with ``.``.
        allowed: called with the name of each symlink; False leaves it out (it resolves
            outside the root, or to a hidden path).
    """
    entries: list[Entry] = []
    with os.scandir(fd) as scan:
        for item in scan:
            name = item.name
            if not show_hidden and name.startswith("."):
                continue
            try:
                name.encode("utf-8")
            except UnicodeEncodeError:
                continue  # an undecodable name (surrogate-escaped): no URL can reach it
            try:
                if item.is_symlink() and not allowed(name):
                    continue
                status = os.stat(name, dir_fd=fd)
            except OSError:
                continue  # dangling symlink, or gone since the scan
            is_dir = stat.S_ISDIR(status.st_mode)
            if not is_dir and not stat.S_ISREG(status.st_mode):
                continue
            entries.append(Entry(name, is_dir, status.st_size, status.st_mtime))
    entries.sort(key=lambda entry: (not entry.is_dir, entry.name))
    return entries


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
@media (prefers-color-scheme:dark){body{color:#ddd;background:#111}a{color:#8ab4f8}\
th,td{border-color:#333}td.time,th{color:#aaa}}"""


def render_listing(display_path: str, entries: list[Entry], has_parent: bool) -> bytes:
    """The HTML page listing ``entries`` of the directory at URL path ``display_path``."""
    title = html.escape(f"Index of {display_path}")
    rows = []
    if has_parent:
        rows.append('<tr><td><a href="../">../</a></td><td class="size"></td><td class="time"></td></tr>')
    for entry in entries:
        suffix = "/" if entry.is_dir else ""
        # quote(safe="") encodes ":" too, so a name like "a:b" cannot read as a URL scheme.
        href = html.escape(quote(entry.name, safe="") + suffix)
        name = html.escape(entry.name + suffix)
        # Clamped like Last-Modified: a tmpfs mtime can be past what gmtime() converts.
        moment = time.gmtime(clamp_to_http_date(entry.mtime))
        iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", moment)
        shown = time.strftime("%Y-%m-%d %H:%M", moment)
        size = "" if entry.is_dir else f'<span title="{entry.size} bytes">{_human_size(entry.size)}</span>'
        rows.append(
            f'<tr><td><a href="{href}">{name}</a></td><td class="size">{size}</td>'
            f'<td class="time"><time datetime="{iso}">{shown}</time></td></tr>'
        )
    page = (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n<style>\n{_STYLE}\n</style>\n</head>\n<body>\n"
        f"<h1>{title}</h1>\n<table>\n"
        '<thead><tr><th>Name</th><th class="size">Size</th><th>Modified (UTC)</th></tr></thead>\n'
        "<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>\n</body>\n</html>\n"
    )
    return page.encode("utf-8")


def _human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            return f"{value:.1f} {unit}"
    return f"{size} B"  # pragma: no cover
