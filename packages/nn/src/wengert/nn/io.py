"""Saving and loading model weights by name (safetensors, or ``.npz``).

Names are dotted paths (``layers.0.weight``, ``layers.1.mean``). Writes are
atomic: the file is written next to its destination
(``.NAME.HOST.PID.TOKEN.tmp``), flushed, then renamed over it, so a crash leaves
either the old checkpoint or the new one, never a mix; the next save to the
same path on the same host removes temporaries whose writer died (the host is
named so that a shared file system's other nodes are left alone). The file records a CRC-32 of every array's bytes, which
`load` verifies, so a damaged file is refused instead of loaded.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from wengert import ad

from .core import Buffer, Const, flatten_model, is_array, named_leaves

__all__ = ["load", "save", "state_dict"]

#: The safetensors metadata key, and the ``.npz`` member, holding our metadata.
_METADATA = "wengert.nn"


def _host(x: Any) -> np.ndarray:
    return np.ascontiguousarray(x.get() if hasattr(x, "get") and not isinstance(
        x, np.ndarray) else x)


def state_dict(model: Any) -> dict[str, np.ndarray]:
    """Every array of ``model`` (parameters, frozen or not, and state) by name."""
    return {name: _host(x) for name, x in named_leaves(model) if is_array(x)}


def _use_safetensors(path: Path) -> bool:
    if path.suffix == ".npz":
        return False
    try:
        import safetensors.numpy  # noqa: F401
    except ImportError:
        return False
    return True


def _crc32(a: np.ndarray) -> str:
    return f"{zlib.crc32(np.ascontiguousarray(a).reshape(-1).view(np.uint8)):08x}"


# ---- atomic writes -----------------------------------------------------------------------------

def _hostname() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "host"


def _temporaries(path: Path) -> re.Pattern:
    return re.compile(rf"\.{re.escape(path.name)}\.{re.escape(_hostname())}\.(\d+)\.[0-9a-f]+\.tmp")


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _remove_stale_temporaries(path: Path) -> None:
    """Delete temporaries of ``path`` whose writer process no longer runs."""
    pattern = _temporaries(path)
    for candidate in path.parent.iterdir():
        match = pattern.fullmatch(candidate.name)
        if match and not _running(int(match.group(1))):
            candidate.unlink(missing_ok=True)


def _write_atomically(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """``write(file)`` into a temporary beside ``path``, synced, then renamed over it. The file
    gets the mode a plain ``open(path, "wb")`` gives: the old file's, or 0o666 minus the umask."""
    _remove_stale_temporaries(path)
    tmp = path.with_name(f".{path.name}.{_hostname()}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with open(fd, "wb") as f:
            if path.exists():
                os.fchmod(f.fileno(), path.stat().st_mode & 0o7777)
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# ---- the two formats ---------------------------------------------------------------------------

def _portable(a: np.ndarray) -> tuple[np.ndarray, str | None]:
    """``.npy`` cannot describe extension dtypes (bfloat16, float8): store their bits as
    unsigned integers and return the dtype's name to restore them."""
    if a.dtype.kind == "V" and a.dtype.fields is None:
        return a.view(f"u{a.dtype.itemsize}"), a.dtype.name
    return a, None


def save(path: str | os.PathLike, model: Any) -> Path:
    """Write ``model``'s arrays to ``path`` atomically. Without the safetensors
    package (or for a ``.npz`` path) the format is NumPy's ``.npz``;
    returns the path written."""
    path = Path(path)
    tensors = state_dict(model)
    if not _use_safetensors(path) and path.suffix != ".npz":
        path = path.with_suffix(".npz")
    meta: dict[str, Any] = {"crc32": {k: _crc32(v) for k, v in tensors.items()}}

    def write(f: BinaryIO) -> None:
        if path.suffix == ".npz":
            stored, dtypes = {}, {}
            for name, a in tensors.items():
                stored[name], dtype = _portable(a)
                if dtype is not None:
                    dtypes[name] = dtype
            meta["dtypes"] = dtypes
            stored[_METADATA] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
            np.savez(f, **stored)
        else:
            from safetensors.numpy import save as to_bytes

            f.write(to_bytes(tensors, metadata={_METADATA: json.dumps(meta)}))

    try:
        _write_atomically(path, write)
    except OSError as exc:  # a full disk, a size limit, permissions: say which file, and that
        raise type(exc)(exc.errno, f"save: could not write {path}: {exc.strerror}; the "
                        "previous checkpoint there, if any, is unchanged") from exc
    return path


def _extension_dtype(name: str, like: np.dtype) -> np.dtype:
    if like.name == name:
        return like
    try:
        import ml_dtypes

        return np.dtype(getattr(ml_dtypes, name))
    except (ImportError, AttributeError, TypeError):
        raise ValueError(f"load: arrays of dtype {name} need the ml_dtypes package "
                         "(pip install ml_dtypes)") from None


def _read_npz(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    with np.load(path, allow_pickle=False) as f:
        stored = {k: f[k] for k in f.files}
    meta = stored.pop(_METADATA, None)
    return stored, json.loads(meta.tobytes()) if meta is not None else {}


def _read_safetensors(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        meta = (f.metadata() or {}).get(_METADATA)
        stored = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - not a dict
    return stored, json.loads(meta) if meta is not None else {}


def _read(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    """The arrays and our metadata; an unreadable file raises an error naming it."""
    npz = path.suffix == ".npz" or not _use_safetensors(path)
    if path.is_dir():
        raise IsADirectoryError(f"load: {path} is a folder, not a checkpoint file")
    try:
        return (_read_npz if npz else _read_safetensors)(path)
    except (FileNotFoundError, PermissionError, MemoryError):
        raise  # these already say what is wrong with which file
    except Exception as exc:  # numpy, zipfile, json and safetensors each raise their own
        kind = ".npz" if npz else "safetensors"
        raise ValueError(f"load: {path} is not a readable {kind} checkpoint: it is truncated, "
                         f"damaged or of another format ({type(exc).__name__}: {exc})") from exc


def _check_integrity(path: Path, stored: dict[str, np.ndarray], meta: dict) -> None:
    for name, expected in meta.get("crc32", {}).items():
        if name not in stored:
            raise ValueError(f"load: {path} lost its array {name!r}; the file is damaged")
        if _crc32(stored[name]) != expected:
            raise ValueError(f"load: the bytes of {name!r} in {path} do not match the checksum "
                             "saved with them; the file is damaged (restore it or save again)")


def load(path: str | os.PathLike, like: Any, *, strict: bool = True) -> Any:
    """A copy of ``like`` with the arrays stored at ``path``.

    Every array of ``like`` must be in the file with the same shape (its
    dtype and device are kept); otherwise a `ValueError` names the parameter.
    With ``strict`` (the default) the file may hold no other arrays either;
    ``strict=False`` ignores them. The checksums saved with the file are
    verified first.
    """
    path = Path(path)
    stored, meta = _read(path)
    _check_integrity(path, stored, meta)
    dtypes = meta.get("dtypes", {})
    names = [name for name, _ in named_leaves(like)]
    leaves, treedef = flatten_model(like)
    if len(names) != len(leaves):  # pragma: no cover - a layer outside named_leaves' rules
        raise TypeError("load: could not name every leaf of the model")
    new = []
    shared: dict[int, Any] = {}  # tied weights load as one array again
    for name, leaf in zip(names, leaves):
        value = leaf.value if isinstance(leaf, (Buffer, Const)) else leaf
        if not is_array(value):
            new.append(leaf)
            continue
        if name not in stored:
            raise ValueError(f"load: {path} has no array {name!r} (shape {value.shape})")
        a = stored[name]
        if name in dtypes:
            a = a.view(_extension_dtype(dtypes[name], value.dtype))
        if a.shape != value.shape:
            raise ValueError(f"load: parameter {name!r} has shape {a.shape} in {path} but "
                             f"{value.shape} in the model")
        a = a.astype(value.dtype, copy=False)
        if not isinstance(value, np.ndarray):
            a = ad.to_device(a, "gpu")
        if not isinstance(leaf, (Buffer, Const)):
            a = shared.setdefault(id(leaf), a)
        new.append(Buffer(a) if isinstance(leaf, Buffer) else Const(a) if isinstance(
            leaf, Const) else a)
    unexpected = sorted(set(stored) - set(names))
    if strict and unexpected:
        raise ValueError(f"load: {path} holds arrays the model does not have: "
                         f"{', '.join(map(repr, unexpected))}; load into the matching model, "
                         "or pass strict=False to ignore them")
    return ad.tree_unflatten(treedef, new)
