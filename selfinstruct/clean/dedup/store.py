"""Where a `DuplicateIndex` keeps its state: in this process, or in Redis for several workers.

The state is the band buckets of the MinHash LSH, and per indexed key its insertion number,
its text (token ids here, tokens in Redis) and MinHash values (the exact ROUGE-L and the
Jaccard estimate need them), plus which key first had each exact text.

- `MemoryStore`: dicts of band keys (one 64-bit hash of a band's rows, see
  `minhash.band_keys`) to insertion numbers (a bare int for a bucket of one text, most of
  them), and the sketches in one numpy array. A resumed run rebuilds it from its accepted
  records in a second or two.
- `RedisStore`: datasketch's `MinHashLSH` on its Redis storage, shared by workers pointing
  at the same URL and index name (`--lsh-storage redis://HOST:PORT[/DB][?index=NAME]`);
  `locked()` is a Redis lock, held by `DuplicateIndex.check` across query, confirmation
  and insert, so two workers never both keep a pair of duplicates.

Both propose the same candidates: the texts sharing a band with the query, oldest first,
skipping a bucket that already holds `max_bucket` texts.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import struct
from abc import ABC, abstractmethod
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import numpy as np

from ...errors import SettingError
from .minhash import sketch

DEFAULT_INDEX_NAME = "selfinstruct"
LOCK_TIMEOUT_S = 60  # a worker killed while holding the lock frees it after this long


@dataclass
class Candidates:
    """Earlier texts that share a band with a query, oldest first."""

    keys: list[str]
    texts: list  # token-id tuples (MemoryStore) or token lists (RedisStore)
    sketches: np.ndarray  # (len(keys), num_perm) uint16


class IndexStore(ABC):
    @abstractmethod
    def locked(self):
        """Context in which a check-and-insert is atomic."""

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def indexed_text(self, key: str):
        """The text indexed under `key` (as `insert` got it), or None."""

    @abstractmethod
    def candidates(self, signature: np.ndarray, band_keys: list[int], max_bucket: int) -> Candidates: ...

    @abstractmethod
    def insert(
        self, key: str, tokens: list[str], ids: tuple[int, ...], signature: np.ndarray, band_keys: list[int]
    ) -> None: ...

    @abstractmethod
    def claim_exact(self, text_key: str, key: str) -> str:
        """The key that first had this exact text: `key` itself if nobody had it yet."""


class MemoryStore(IndexStore):
    def __init__(self, settings):
        # band key -> the insertion number of its one text (most buckets), or a list of them
        self._buckets: list[dict[int, int | list[int]]] = [{} for _ in range(settings.bands)]
        self._number: dict[str, int] = {}  # key -> insertion number
        self._keys: list[str] = []
        self._ids: list[tuple[int, ...]] = []
        self._sketches = np.empty((1024, settings.num_perm), dtype=np.uint16)
        self._exact: dict[str, str] = {}

    def locked(self):
        return nullcontext()

    def __len__(self) -> int:
        return len(self._keys)

    def indexed_text(self, key: str):
        number = self._number.get(key)
        return None if number is None else self._ids[number]

    def candidates(self, signature, band_keys, max_bucket) -> Candidates:
        found = set()
        for bucket, band_key in zip(self._buckets, band_keys):
            members = bucket.get(band_key)
            if members is None:
                continue
            if type(members) is int:
                if max_bucket > 1:
                    found.add(members)
            elif len(members) < max_bucket:
                found.update(members)
        numbers = sorted(found)
        return Candidates([self._keys[n] for n in numbers], [self._ids[n] for n in numbers], self._sketches[numbers])

    def insert(self, key, tokens, ids, signature, band_keys) -> None:
        number = len(self._keys)
        if number == len(self._sketches):
            self._sketches = np.concatenate([self._sketches, np.empty_like(self._sketches)])
        self._sketches[number] = sketch(signature)
        self._number[key] = number
        self._keys.append(key)
        self._ids.append(ids)
        for bucket, band_key in zip(self._buckets, band_keys):
            members = bucket.setdefault(band_key, number)
            if members is number:
                continue
            if type(members) is int:
                bucket[band_key] = [members, number]
            else:
                members.append(number)

    def claim_exact(self, text_key: str, key: str) -> str:
        return self._exact.setdefault(text_key, key)


class RedisStore(IndexStore):
    """The index in Redis: datasketch's Redis storage for the buckets, and under the
    same index name a hash of entries, a hash of exact texts, a counter and the lock."""

    def __init__(self, url: str, settings):
        from datasketch import LeanMinHash, MinHashLSH

        self._lean = LeanMinHash
        redis = _import_redis()
        params, name = parse_redis_url(url)
        self.url = url
        self.client = redis.Redis(**params)
        try:
            self.client.ping()
        except redis.RedisError as e:
            raise SettingError(f"{{lsh_storage}} {url}: cannot reach Redis ({e})", "lsh_storage") from None
        self._check_settings(name, settings)
        self.seed = settings.seed
        self.lsh = MinHashLSH(
            num_perm=settings.num_perm,
            params=(settings.bands, settings.rows),
            storage_config={"type": "redis", "basename": f"{name}:lsh".encode(), "redis": params},
        )
        self._entries_key = f"{name}:entries"
        self._exact_key = f"{name}:exact"
        self._counter_key = f"{name}:inserted"
        self._lock = self.client.lock(f"{name}:lock", timeout=LOCK_TIMEOUT_S, sleep=0.002)

    def _check_settings(self, name: str, settings) -> None:
        """An index only makes sense with the MinHash settings it was built with."""
        wanted = settings.model_dump_json()
        key = f"{name}:settings"
        self.client.set(key, wanted, nx=True)
        stored = self.client.get(key).decode()
        if stored != wanted:
            differences = {k: v for k, v in json.loads(stored).items() if json.loads(wanted).get(k) != v}
            raise SettingError(
                f"{{lsh_storage}} {self.url}: index '{name}' was built with other dedup settings "
                f"({', '.join(f'{k}={v!r}' for k, v in differences.items())}); "
                "use the same preset, or another index name (?index=NAME)",
                "lsh_storage",
            )

    @contextmanager
    def locked(self):
        with self._lock:
            yield

    def __len__(self) -> int:
        return self.client.hlen(self._entries_key)

    def indexed_text(self, key: str):
        raw = self.client.hget(self._entries_key, key)
        return None if raw is None else _decode_entry(raw)[1]

    def candidates(self, signature, band_keys, max_bucket) -> Candidates:
        """datasketch's `MinHashLSH.query`, skipping the buckets that hold `max_bucket` keys."""
        lsh, keys = self.lsh, set()
        for (start, end), table in zip(lsh.hashranges, lsh.hashtables):
            members = table.get(lsh._H(signature[start:end]))
            if len(members) < max_bucket:
                keys.update(members)
        keys = [pickle.loads(k) for k in keys] if lsh.prepickle else list(keys)
        if not keys:
            return Candidates([], [], np.empty((0, len(signature)), dtype=np.uint16))
        entries = sorted(
            (*_decode_entry(raw), key) for key, raw in zip(keys, self.client.hmget(self._entries_key, keys))
        )
        signatures = np.array([signature for _, _, signature, _ in entries], dtype=np.uint32)
        return Candidates([key for *_, key in entries], [tokens for _, tokens, _, _ in entries], sketch(signatures))

    def insert(self, key, tokens, ids, signature, band_keys) -> None:
        number = self.client.incr(self._counter_key)
        raw = struct.pack(">QI", number, len(signature)) + signature.astype("<u4").tobytes() + " ".join(tokens).encode()
        self.client.hset(self._entries_key, key, raw)
        self.lsh.insert(
            key, self._lean(seed=self.seed, hashvalues=signature, scheme="affine32"), check_duplication=False
        )

    def claim_exact(self, text_key: str, key: str) -> str:
        field = hashlib.sha256(text_key.encode()).digest()  # a paragraph-long text in 32 bytes
        self.client.hsetnx(self._exact_key, field, key)
        return self.client.hget(self._exact_key, field).decode()


def _decode_entry(raw: bytes) -> tuple[int, list[str], np.ndarray]:
    """(insertion number, tokens, signature) of an entry stored by `RedisStore.insert`."""
    number, width = struct.unpack_from(">QI", raw)
    start = struct.calcsize(">QI")
    signature = np.frombuffer(raw, dtype="<u4", count=width, offset=start).astype(np.uint32)
    return number, raw[start + 4 * width :].decode().split(), signature


def parse_redis_url(url: str) -> tuple[dict, str]:
    """redis-py connection parameters and the index name of an `lsh_storage` URL."""
    parts = urlsplit(url)
    if parts.scheme != "redis":
        raise SettingError(f"{{lsh_storage}} {url}: expected redis://HOST:PORT[/DB][?index=NAME]", "lsh_storage")
    query = parse_qs(parts.query)
    name = query.pop("index", [DEFAULT_INDEX_NAME])[-1]
    from redis.connection import parse_url

    try:
        params = parse_url(urlunsplit(parts._replace(query=urlencode(query, doseq=True))))
    except ValueError as e:
        raise SettingError(f"{{lsh_storage}} {url}: {e}", "lsh_storage") from None
    return params, name


def _import_redis():
    try:
        import redis
    except ImportError:
        raise SettingError(
            "{lsh_storage} redis://... needs the redis package: pip install 'selfinstruct[redis]'", "lsh_storage"
        ) from None
    return redis


def open_store(lsh_storage: str | None, settings) -> IndexStore:
    """The store an `lsh_storage` URL names (None: this process's memory)."""
    if lsh_storage is None:
        return MemoryStore(settings)
    return RedisStore(lsh_storage, settings)
