"""The interface every storage implements (orca_core/storage.py tells how they are used and chosen)."""

from __future__ import annotations

import abc
from pathlib import Path

from orca_core.layout import LocalLayout


class StorageError(Exception):
    """The store refused or failed an operation; the message says which and why."""


class Storage(abc.ABC):
    """The store behind a local copy (see the module docstring)."""

    url: str
    remote: bool = False

    @abc.abstractmethod
    def pull(self, layout: LocalLayout, collection: str) -> None:
        """Bring the copy of `collection` (inbox, warehouse, served index) up to date with the store."""

    @abc.abstractmethod
    def push(self, layout: LocalLayout, collection: str) -> None:
        """Send what a step changed in the copy's warehouse; publish the served index if it changed."""

    @abc.abstractmethod
    def saved(self, layout: LocalLayout, collection: str, path: Path) -> None:
        """One warehouse file a step wrote and must not lose if it is killed (an embedding batch's part)."""

    @abc.abstractmethod
    def refresh_index(self, layout: LocalLayout, collection: str) -> bool:
        """Make the copy's served index (and search copy) the store's current one; False when there is none."""

    def purge(self, layout: LocalLayout, collection: str, *, inbox: bool) -> tuple[int, int]:
        """Remove the collection's warehouse (and its inbox if asked) from the store, beyond the local copy
        (which the caller removes); (objects, bytes) removed. Nothing to do when the copy is the store."""
        return 0, 0

    def reader_layout(self, layout: LocalLayout) -> LocalLayout:
        """The copy searches read: the runs' own, or with an object store one apart (`layout.readers`), so a
        search's refresh and a run's pull never write the same files."""
        return layout.readers if self.remote else layout

    @abc.abstractmethod
    def collection_names(self) -> list[str]:
        """Every collection with documents or a warehouse on the store, sorted."""
