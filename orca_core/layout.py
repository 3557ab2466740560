"""Where Orca keeps things under ORCA_HOME, and what a collection is: the one home of both rules.

    $ORCA_HOME/
      inbox/<collection>/...                 the documents (source of truth; sub-folders allowed)
      inbox/<collection>/.orca/sources/<doc_id>/record.json   where each posted document came from
      warehouse/<collection>/*.parquet       the assets' outputs; embedding_index.parquet is the served index
      warehouse/<collection>/embedding_index.search/   the index's search copy (orca_core/ann): segments, manifest
      warehouse/<collection>/.orca.lock      held by the step writing the collection
      intake/queue.db                        the intake queue (SQLite, unless ORCA_INTAKE_DB_URL names another)
      dagster/                               DAGSTER_HOME, unless set
      sync/<collection>[.inbox].json         with an object store (ORCA_STORAGE_URL): what this copy last synced
      readers/                               with an object store: the copy searches read (inbox-less)

Everything else asks a `Layout` for a path instead of joining strings. `LocalLayout` is the local folder
implementation; the interface is where another storage (an object store) plugs in.
"""

from __future__ import annotations

import abc
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from orca_core.names import is_ignored_name

COLLECTION_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
COLLECTION_RULE = "1-63 characters from a-z, 0-9, '_' and '-', starting with a letter or digit"

INBOX_DIR, WAREHOUSE_DIR, INTAKE_DIR, DAGSTER_DIR = "inbox", "warehouse", "intake", "dagster"
QUEUE_DB = "queue.db"
SYNC_DIR, READERS_DIR = "sync", "readers"  # only with an object store (orca_core/storage.py)
SAMPLE_COLLECTION = "samples"
# Inside a collection's inbox: records of where posted documents came from (hidden: no scanner reads them).
SOURCES_DIR = Path(".orca") / "sources"
RECORD_FILE = "record.json"
# Inside a collection's warehouse folder.
DOCUMENTS_FILE = "documents.parquet"
FAILED_DOCUMENTS_FILE = "failed_documents.parquet"  # the documents that could not be read, with their reasons
CHUNKS_FILE = "chunks.parquet"
STORE_FILE = "embeddings.parquet"
PARTS_DIR = "embeddings.parts"  # per-batch progress of a run, folded into STORE_FILE when it ends
FAILED_CHUNKS_FILE = "failed_chunks.parquet"
INDEX_FILE = "embedding_index.parquet"
STAGED_INDEX_FILE = "embedding_index.staged.parquet"  # a new index while its checks judge it, never served
INDEX_VERDICTS_FILE = "embedding_index.checked.json"  # the served index's check results, with what they judged
VERIFIED_SUFFIX = ".verified.json"  # <step>.verified.json: a step's last up-to-date verdict (orca_assets/unchanged.py)
SEARCH_DIR = "embedding_index.search"  # the served index's search copy: memory-mapped segments and HNSW graphs
LOCK_FILE = ".orca.lock"


def source_record(doc_id: str) -> Path:
    """Where the record of a posted document lives, relative to its collection's inbox.

    A folder per document id: the record of `x.md` can then collide with another document's record only where
    the documents themselves would (`x.md` a file and `x.md/y.md` a folder), never across ids as a record named
    `<id>.json` did (the record file `x.md.json` blocked the document `x.md.json/y.md`).
    """
    return SOURCES_DIR / doc_id / RECORD_FILE


def legacy_source_record(doc_id: str) -> Path:
    """Where records were written before `source_record`: still read, and deleted with their document."""
    return SOURCES_DIR / f"{doc_id}.json"


def is_valid_collection(name: str) -> bool:
    return COLLECTION_NAME.fullmatch(name) is not None


def check_collection(name: str) -> str:
    """Return `name` when it is a valid collection name, else raise ValueError saying what is allowed."""
    if not is_valid_collection(name):
        raise ValueError(f"invalid collection name {name!r}: use {COLLECTION_RULE}")
    return name


@dataclass(frozen=True)
class CollectionFolders:
    """The folders directly under the inbox: collections, visible folders whose names are not valid, and valid
    ones that are symbolic links (not collections unless links are followed)."""

    valid: list[str]
    invalid: list[str]
    linked: list[str] = field(default_factory=list)


class Layout(abc.ABC):
    """Orca's storage, addressed by collection. Collection names are checked before any path is made."""

    @abc.abstractmethod
    def inbox(self, collection: str) -> Path:
        """The folder of a collection's documents."""

    @abc.abstractmethod
    def warehouse(self, collection: str) -> Path:
        """The folder of a collection's derived data (the assets' Parquet files)."""

    @abc.abstractmethod
    def collection_folders(self) -> CollectionFolders:
        """Which inbox folders are collections: the inbox sensor's rule, and `orca materialize --all`'s."""

    @abc.abstractmethod
    def collections(self) -> list[str]:
        """Every collection with an inbox folder or a warehouse folder, sorted: what the catalogs list."""

    @abc.abstractmethod
    def linked_inbox(self, collection: str) -> bool:
        """True when the collection's inbox folder is a symbolic link that must not be followed."""

    def has_collection(self, collection: str) -> bool:
        """True when the collection has an inbox or a warehouse folder."""
        return self.inbox(collection).is_dir() or self.warehouse(collection).is_dir()

    def warehouse_file(self, collection: str, name: str) -> Path:
        return self.warehouse(collection) / name

    def index_path(self, collection: str) -> Path:
        """The served index (the contract in ARCHITECTURE.md)."""
        return self.warehouse_file(collection, INDEX_FILE)

    def search_dir(self, collection: str) -> Path:
        """The served index's search copy (orca_core/ann): what `orca search` and `/v1/search` read."""
        return self.warehouse_file(collection, SEARCH_DIR)

    def inbox_source(self, collection: str, doc_id: str) -> str:
        """The `source` of a document dropped into the inbox: its path relative to ORCA_HOME."""
        return f"{INBOX_DIR}/{check_collection(collection)}/{doc_id}"


@dataclass(frozen=True)
class LocalLayout(Layout):
    """The layout on a local (or mounted) file system under `home`.

    A collection folder that is a symbolic link (`inbox/etc -> /etc`) would index, and let callers delete,
    whatever it points to: it is no collection unless `follow_symlinks` (ORCA_INBOX_FOLLOW_SYMLINKS) says so.
    """

    home: Path
    follow_symlinks: bool = False

    @property
    def inbox_root(self) -> Path:
        return self.home / INBOX_DIR

    @property
    def warehouse_root(self) -> Path:
        return self.home / WAREHOUSE_DIR

    @property
    def queue_db(self) -> Path:
        return self.home / INTAKE_DIR / QUEUE_DB

    @property
    def queue_url(self) -> str:
        """The SQLAlchemy URL of the intake queue when ORCA_INTAKE_DB_URL names none."""
        return f"sqlite:///{self.queue_db}"

    def sync_record(self, collection: str) -> Path:
        """What this local copy of `collection` last matched on an object store (orca_core/s3_storage.py)."""
        return self.home / SYNC_DIR / f"{check_collection(collection)}.json"

    @property
    def readers(self) -> LocalLayout:
        """The copy searches read with an object store: apart from the runs' copy, so neither disturbs the other."""
        return LocalLayout(self.home / READERS_DIR, follow_symlinks=self.follow_symlinks)

    @property
    def default_dagster_home(self) -> Path:
        return self.home / DAGSTER_DIR

    def inbox(self, collection: str) -> Path:
        return self.inbox_root / check_collection(collection)

    def warehouse(self, collection: str) -> Path:
        return self.warehouse_root / check_collection(collection)

    def collection_folders(self) -> CollectionFolders:
        valid, invalid, linked = [], [], []
        for name in _visible_folders(self.inbox_root):
            if not is_valid_collection(name):
                invalid.append(name)
            elif self.linked_inbox(name):
                linked.append(name)
            else:
                valid.append(name)
        return CollectionFolders(sorted(valid), sorted(invalid), sorted(linked))

    def linked_inbox(self, collection: str) -> bool:
        return not self.follow_symlinks and self.inbox(collection).is_symlink()

    def collections(self) -> list[str]:
        names = set(self.collection_folders().valid)
        names.update(name for name in _visible_folders(self.warehouse_root) if is_valid_collection(name))
        return sorted(names)


def _visible_folders(root: Path) -> list[str]:
    """Names of the folders (links to folders included) directly under `root`, hidden and temporary ones left out."""
    try:
        with os.scandir(root) as scan:
            return [e.name for e in scan if not is_ignored_name(e.name) and e.is_dir(follow_symlinks=True)]
    except (FileNotFoundError, NotADirectoryError):
        return []
