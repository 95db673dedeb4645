"""The `isc-descriptors` format of SPEC §13: the Image Similarity Challenge's descriptor
track, as an HDF5 file (h5py) or a numpy `.npz` archive, holding at its root:

    query_ids       n strings, image ids of the phase (a query left out is `missed`);
                    in HDF5 fixed-length strings (`np.array(ids, dtype="S")`)
    query           float32, n x d
    reference_ids   m strings, reference ids of the phase (each at most once)
    reference       float32, m x d, the same d, 1 <= d <= MAX_DIMENSIONS

Every array's shape and type is checked from the file's own header before it is read,
and a shape is bounded by the phase (no more rows than it has queries or references),
so a file cannot make the hub allocate more than its arrays' honest size. `.npz`
members are read with `allow_pickle=False`: an object array is refused, never unpickled.
"""

import zipfile
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO, Any, BinaryIO

import numpy as np
import numpy.typing as npt

from gateway.offline.answers import Catalogue, Ints
from gateway.offline.errors import RejectKind, SubmissionRejected, SubmissionTooLarge, shown

MAX_DIMENSIONS = 2048
MAX_ID_CHARS = 256
ARRAYS = ("query_ids", "query", "reference_ids", "reference")
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_ZIP_MAGIC = b"PK\x03\x04"
# What reading a damaged container raises (h5py also raises ValueError and TypeError
# for a datatype it cannot map, e.g. a float of a precision numpy lacks).
_BROKEN: tuple[type[Exception], ...] = (
    OSError,
    ValueError,
    TypeError,
    KeyError,
    RuntimeError,
    ArithmeticError,  # OverflowError: a size field too large for C
)
_BROKEN_ZIP: tuple[type[Exception], ...] = (*_BROKEN, zipfile.BadZipFile, zlib.error, EOFError)
_FINITE_BLOCK = 8192  # rows checked at once, to keep the check's own memory small

Vectors = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Descriptors:
    """A validated file: `queries[i]` is the image index of row i of `query`,
    `references[j]` the reference index of row j of `reference`."""

    queries: Ints
    query: Vectors
    references: Ints
    reference: Vectors


@dataclass(frozen=True)
class _Array:
    """An array of the file, known by its header; `load()` reads it."""

    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    is_text: bool
    load: Callable[[], npt.NDArray[Any]]


def read_descriptors(
    stream: BinaryIO, *, catalogue: Catalogue, max_bytes: int | None = None
) -> Descriptors:
    """Validate and read an `isc-descriptors` file (HDF5 or `.npz`, told by its first
    bytes). `stream` must be seekable (a spooled upload is). Raises SubmissionRejected
    naming the array (and row) at fault: not HDF5 nor `.npz`, an array missing, of the
    wrong type or shape, an unknown or repeated id, a vector that is not finite."""
    stream.seek(0, 2)
    size = stream.tell()
    stream.seek(0)
    if max_bytes is not None and size > max_bytes:
        raise SubmissionTooLarge(limit=max_bytes)
    magic = stream.read(8)
    stream.seek(0)
    if magic.startswith(_HDF5_MAGIC):
        import h5py  # only a descriptor upload pays for importing HDF5

        try:
            with h5py.File(stream, "r") as h5:
                return _validated(_hdf5_arrays(h5), catalogue=catalogue)
        except SubmissionRejected:
            raise
        except _BROKEN as exc:  # libhdf5 and h5py on a damaged file
            raise _not_container(f"the HDF5 file cannot be read ({exc})") from None
    if magic.startswith(_ZIP_MAGIC):
        try:
            with zipfile.ZipFile(stream) as archive:
                return _validated(_npz_arrays(archive), catalogue=catalogue)
        except SubmissionRejected:
            raise
        except _BROKEN_ZIP as exc:
            raise _not_container(f"the .npz file cannot be read ({exc})") from None
    raise _not_container("the file is neither HDF5 nor .npz")


def _validated(arrays: Mapping[str, _Array], *, catalogue: Catalogue) -> Descriptors:
    for name in ARRAYS:
        if name not in arrays:
            raise SubmissionRejected(
                RejectKind.MISSING_ARRAY,
                f"the file has no array {name}",
                expected=f"arrays {', '.join(ARRAYS)} at the file's root",
                array=name,
            )
    n = _check_ids(arrays["query_ids"], "query_ids", limit=len(catalogue.image_ids))
    m = _check_ids(arrays["reference_ids"], "reference_ids", limit=len(catalogue.reference_ids))
    d = _check_vectors(arrays["query"], "query", rows=n, dimensions=None)
    _check_vectors(arrays["reference"], "reference", rows=m, dimensions=d)
    queries = _indices(arrays["query_ids"], "query_ids", catalogue.image_index)
    references = _indices(arrays["reference_ids"], "reference_ids", catalogue.reference_index)
    query = _finite(arrays["query"], "query")
    reference = _finite(arrays["reference"], "reference")
    return Descriptors(queries=queries, query=query, references=references, reference=reference)


def _check_ids(array: _Array, name: str, *, limit: int) -> int:
    if not array.is_text:
        raise _wrong_dtype(name, array.dtype, "strings (ids)")
    if len(array.shape) != 1:
        raise _wrong_shape(name, array.shape, "a 1-dimensional array of ids")
    if array.shape[0] > limit:
        raise _wrong_shape(name, array.shape, f"at most {limit} ids, one per id of the phase")
    return array.shape[0]


def _check_vectors(array: _Array, name: str, *, rows: int, dimensions: int | None) -> int:
    if array.dtype != np.float32:
        raise _wrong_dtype(name, array.dtype, "float32")
    shape = array.shape
    ids = "query_ids" if name == "query" else "reference_ids"
    if len(shape) != 2 or shape[0] != rows:
        raise _wrong_shape(name, shape, f"({rows}, d): one row per id of {ids}")
    if dimensions is not None and shape[1] != dimensions:
        raise _wrong_shape(name, shape, f"({rows}, {dimensions}): the d of query")
    if not 1 <= shape[1] <= MAX_DIMENSIONS:
        raise _wrong_shape(name, shape, f"d from 1 to {MAX_DIMENSIONS}")
    return shape[1]


def _indices(array: _Array, name: str, index: Mapping[str, int]) -> Ints:
    found = np.empty(array.shape[0], dtype=np.int64)
    seen: dict[int, int] = {}
    for row, value in enumerate(array.load().tolist()):
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
        place = index.get(text)
        if place is None:
            raise SubmissionRejected(
                RejectKind.UNKNOWN_ID,
                f'id "{shown(text)}" is not known',
                expected="an image_id of images.csv"
                if name == "query_ids"
                else "a reference id of the phase",
                array=name,
                index=row,
                text=text,
            )
        if place in seen:
            raise SubmissionRejected(
                RejectKind.REPEATED_ID,
                f'id "{shown(text)}" is also row {seen[place]}',
                expected="each id at most once",
                array=name,
                index=row,
                text=text,
            )
        seen[place] = row
        found[row] = place
    return found


def _finite(array: _Array, name: str) -> Vectors:
    vectors: Vectors = np.ascontiguousarray(array.load(), dtype=np.float32)
    for start in range(0, len(vectors), _FINITE_BLOCK):
        block = np.isfinite(vectors[start : start + _FINITE_BLOCK]).all(axis=1)
        if not block.all():
            row = start + int(np.argmin(block))
            raise SubmissionRejected(
                RejectKind.NOT_FINITE,
                "the vector holds NaN or infinity",
                expected="finite float32 values",
                array=name,
                index=row,
            )
    return vectors


def _hdf5_arrays(h5: Any) -> dict[str, _Array]:
    import h5py

    arrays: dict[str, _Array] = {}
    for name in ARRAYS:
        item = h5.get(name)
        if not isinstance(item, h5py.Dataset):
            continue
        text = h5py.check_string_dtype(item.dtype)
        if text is not None and text.length is None:
            # Variable-length strings live in a heap that libhdf5 walks by the file's own
            # pointers: one flipped byte there made it spin forever (a fuzzed file), so
            # ids must be fixed-length strings, read as one bounded block.
            raise _wrong_dtype(
                name,
                item.dtype,
                "fixed-length strings, e.g. np.array(ids, dtype='S') (HDF5 variable-length "
                "strings are not read), or a .npz file",
            )
        if text is not None and item.dtype.itemsize > 4 * MAX_ID_CHARS:
            raise _wrong_dtype(name, item.dtype, f"ids of at most {MAX_ID_CHARS} characters")

        def load(item: Any = item, is_text: bool = text is not None) -> npt.NDArray[Any]:
            return np.asarray(
                item.asstr(encoding="utf-8", errors="replace")[()] if is_text else item[()]
            )

        arrays[name] = _Array(tuple(item.shape), item.dtype, text is not None, load)
    return arrays


def _npz_arrays(archive: zipfile.ZipFile) -> dict[str, _Array]:
    arrays: dict[str, _Array] = {}
    members = set(archive.namelist())
    for name in ARRAYS:
        member = f"{name}.npy"
        if member not in members:
            continue
        with archive.open(member) as fp:
            shape, dtype = _npy_header(fp, name)
        text_kinds = ("U", "S")
        if dtype.kind in text_kinds and dtype.itemsize > 4 * MAX_ID_CHARS:
            raise _wrong_dtype(name, dtype, f"ids of at most {MAX_ID_CHARS} characters")

        def load(member: str = member, name: str = name) -> npt.NDArray[Any]:
            with archive.open(member) as fp:
                try:
                    return np.lib.format.read_array(fp, allow_pickle=False)
                except ValueError as exc:
                    raise _not_container(f"array {name} cannot be read ({exc})") from None

        arrays[name] = _Array(shape, dtype, dtype.kind in text_kinds, load)
    return arrays


def _npy_header(fp: IO[bytes], name: str) -> tuple[tuple[int, ...], np.dtype[Any]]:
    try:
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(fp)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(fp)
    except ValueError as exc:
        raise _not_container(f"array {name} has no valid .npy header ({exc})") from None
    return tuple(int(s) for s in shape), np.dtype(dtype)


def _not_container(problem: str) -> SubmissionRejected:
    return SubmissionRejected(
        RejectKind.NOT_A_CONTAINER,
        problem,
        expected="an HDF5 file (h5py) or a numpy .npz archive (np.savez)",
    )


def _wrong_dtype(name: str, dtype: np.dtype[Any], expected: str) -> SubmissionRejected:
    return SubmissionRejected(
        RejectKind.WRONG_DTYPE, f"the array holds {dtype}", expected=expected, array=name
    )


def _wrong_shape(name: str, shape: tuple[int, ...], expected: str) -> SubmissionRejected:
    return SubmissionRejected(
        RejectKind.WRONG_SHAPE, f"the array has shape {shape}", expected=expected, array=name
    )
