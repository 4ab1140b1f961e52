"""Headers: ordered (lowercased name, value) pairs that keep the raw names.

Must not import asyncio, socket, ssl, os, time or logging.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

__all__ = ["Headers", "split_list", "raw_pairs"]


def raw_pairs(raw: Sequence[Any], items: Sequence[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """(raw name, value) pairs from ``raw``: one per item of ``items``, either a pair whose
    first element is the name as the client spelled it, or the field's line itself
    (``name:value``, as the parser's fast path keeps them instead of building the pairs)."""
    return [(name[: name.index(b":")] if type(name) is bytes else name[0], value)
            for name, (_, value) in zip(raw, items)]


class Headers(Sequence[tuple[bytes, bytes]]):
    """Header fields in arrival order; duplicates kept.

    Iterating yields ``(lowercased_name, value)`` pairs; ``raw_items()`` gives the names
    exactly as received.
    """

    __slots__ = ("items", "_raw")

    def __init__(
        self,
        items: Sequence[tuple[bytes, bytes]] | Iterator[tuple[bytes, bytes]] = (),
        raw: Sequence[Any] | None = None,
    ) -> None:
        #: The underlying list of (lowercased name, value) pairs. Do not mutate. (A list
        #: given to the constructor becomes this list, without a copy.)
        self.items: list[tuple[bytes, bytes]] = items if type(items) is list else list(items)
        # One pair per item whose first element is the name as the client spelled it, or its
        # line (see ``raw_pairs``): the parser's own list, so nothing is copied per request.
        self._raw = raw

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index):  # type: ignore[no-untyped-def]
        return self.items[index]

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        return iter(self.items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return self.items == other.items
        if isinstance(other, (list, tuple)):
            return self.items == list(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self.items))

    def __repr__(self) -> str:
        return f"Headers({self.items!r})"

    def raw_items(self) -> list[tuple[bytes, bytes]]:
        """Pairs with names as the client spelled them."""
        if self._raw is None:
            return list(self.items)
        return raw_pairs(self._raw, self.items)

    def get(self, name: bytes, default: bytes | None = None) -> bytes | None:
        """The first value of ``name`` (lowercase), or ``default``."""
        for key, value in self.items:
            if key == name:
                return value
        return default

    def get_all(self, name: bytes) -> list[bytes]:
        """Every value of ``name`` (lowercase), in order."""
        return [value for key, value in self.items if key == name]

    def get_list(self, name: bytes) -> list[bytes]:
        """The comma-separated list header ``name`` as lowercased, stripped elements."""
        result: list[bytes] = []
        for key, value in self.items:
            if key == name:
                result.extend(split_list(value))
        return result


def split_list(value: bytes) -> list[bytes]:
    """Split a #rule list value (RFC 9110 §5.6.1) into lowercased non-empty elements."""
    return [part.strip(b" \t").lower() for part in value.split(b",") if part.strip(b" \t")]
