"""Files written in pieces, joined into one: byte concatenation for text, row groups for Parquet.

A Parquet file is `PAR1`, column chunks, a Thrift footer (FileMetaData) and its length, `PAR1`.
Pages hold no absolute offsets; only the footer does. So Parquet pieces written apart join by
copying each piece's column chunks one after another and writing one footer: every row group
of every piece, its offsets moved by where its bytes now start, ordinals renumbered and the
row counts summed. The footer is read and written with the Thrift compact protocol below: no
value is re-encoded, so nothing is lost of what the writer put there.

    join_parquet(["piece-0.parquet", "piece-1.parquet"], out_file)
"""

from __future__ import annotations

import os
import struct
from typing import BinaryIO

MAGIC = b"PAR1"

# Thrift compact protocol type codes.
_TRUE, _FALSE, _BYTE, _I16, _I32, _I64, _DOUBLE, _BINARY, _LIST, _SET, _MAP, _STRUCT = range(1, 13)

# Field ids (parquet.thrift) of what moves when a row group moves.
_META_NUM_ROWS, _META_ROW_GROUPS = 3, 4
_RG_COLUMNS, _RG_FILE_OFFSET, _RG_ORDINAL = 1, 5, 7
_CC_FILE_OFFSET, _CC_META, _CC_OFFSET_INDEX, _CC_COLUMN_INDEX = 2, 3, 4, 6
_CM_DATA_PAGE, _CM_INDEX_PAGE, _CM_DICTIONARY_PAGE, _CM_BLOOM_FILTER = 9, 10, 11, 14


class StitchError(ValueError):
    """A piece that is not a Parquet file of the same schema as the first."""


# -- Thrift compact protocol: values as (type, value); a struct is a list of [field id, type, value] ---------------


def _varint(buf: bytes, at: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        b = buf[at]
        at += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, at
        shift += 7


def _unzigzag(n: int) -> int:
    return (n >> 1) ^ -(n & 1)


def _read(buf: bytes, at: int, kind: int):
    if kind in (_TRUE, _FALSE):  # a bool in a list or map: one byte
        return buf[at] == 1, at + 1
    if kind == _BYTE:
        return struct.unpack_from("b", buf, at)[0], at + 1
    if kind in (_I16, _I32, _I64):
        n, at = _varint(buf, at)
        return _unzigzag(n), at
    if kind == _DOUBLE:
        return struct.unpack_from("<d", buf, at)[0], at + 8
    if kind == _BINARY:
        n, at = _varint(buf, at)
        return bytes(buf[at : at + n]), at + n
    if kind in (_LIST, _SET):
        head = buf[at]
        at += 1
        size, elem = head >> 4, head & 0x0F
        if size == 15:
            size, at = _varint(buf, at)
        items = []
        for _ in range(size):
            item, at = _read(buf, at, elem)
            items.append(item)
        return (elem, items), at
    if kind == _MAP:
        size, at = _varint(buf, at)
        if not size:
            return (0, 0, []), at
        kinds = buf[at]
        at += 1
        kk, vk = kinds >> 4, kinds & 0x0F
        pairs = []
        for _ in range(size):
            k, at = _read(buf, at, kk)
            v, at = _read(buf, at, vk)
            pairs.append((k, v))
        return (kk, vk, pairs), at
    if kind == _STRUCT:
        fields, last = [], 0
        while True:
            head = buf[at]
            at += 1
            if head == 0:
                return fields, at
            delta, ftype = head >> 4, head & 0x0F
            if delta:
                fid = last + delta
            else:
                n, at = _varint(buf, at)
                fid = _unzigzag(n)
            if ftype in (_TRUE, _FALSE):
                value = ftype == _TRUE
            else:
                value, at = _read(buf, at, ftype)
            fields.append([fid, ftype, value])
            last = fid
    raise StitchError(f"unknown Thrift compact type {kind}")


def _put_varint(out: bytearray, n: int) -> None:
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _zigzag(n: int) -> int:
    return (n << 1) ^ (n >> 63)


class _Encoded(bytes):
    """A value already in Thrift compact bytes: written as is."""


def _write(out: bytearray, kind: int, value) -> None:
    if isinstance(value, _Encoded):
        out += value
    elif kind in (_TRUE, _FALSE):
        out.append(1 if value else 2)
    elif kind == _BYTE:
        out += struct.pack("b", value)
    elif kind in (_I16, _I32, _I64):
        _put_varint(out, _zigzag(value))
    elif kind == _DOUBLE:
        out += struct.pack("<d", value)
    elif kind == _BINARY:
        _put_varint(out, len(value))
        out += value
    elif kind in (_LIST, _SET):
        elem, items = value
        if len(items) < 15:
            out.append((len(items) << 4) | elem)
        else:
            out.append(0xF0 | elem)
            _put_varint(out, len(items))
        for item in items:
            _write(out, elem, item)
    elif kind == _MAP:
        kk, vk, pairs = value
        _put_varint(out, len(pairs))
        if pairs:
            out.append((kk << 4) | vk)
            for k, v in pairs:
                _write(out, kk, k)
                _write(out, vk, v)
    elif kind == _STRUCT:
        last = 0
        for fid, ftype, v in value:
            if ftype in (_TRUE, _FALSE):
                ftype = _TRUE if v else _FALSE
            if 0 < fid - last <= 15:
                out.append(((fid - last) << 4) | ftype)
            else:
                out.append(ftype)
                _put_varint(out, _zigzag(fid))
            if ftype not in (_TRUE, _FALSE):
                _write(out, ftype, v)
            last = fid
        out.append(0)
    else:
        raise StitchError(f"unknown Thrift compact type {kind}")


def _field(fields: list, fid: int):
    return next((f for f in fields if f[0] == fid), None)


# -- Parquet --------------------------------------------------------------------------------------------------


def read_footer(f: BinaryIO, size: int) -> tuple[list, int]:
    """(FileMetaData as Thrift fields, where the footer starts) of a Parquet file of `size` bytes."""
    if size < 12:
        raise StitchError("too short to be a Parquet file")
    f.seek(size - 8)
    tail = f.read(8)
    if tail[4:] != MAGIC:
        raise StitchError("not a Parquet file (no PAR1 at its end)")
    length = struct.unpack("<I", tail[:4])[0]
    start = size - 8 - length
    f.seek(start)
    fields, _ = _read(f.read(length), 0, _STRUCT)
    return fields, start


def footer_bytes(fields: list) -> bytes:
    out = bytearray()
    _write(out, _STRUCT, fields)
    return bytes(out)


def _shift_row_group(group: list, by: int, ordinal: int) -> None:
    for f in group:
        if f[0] == _RG_FILE_OFFSET:
            f[2] += by
        elif f[0] == _RG_ORDINAL:
            f[2] = ordinal
        elif f[0] == _RG_COLUMNS:
            for column in f[2][1]:
                for cf in column:
                    if cf[0] in (_CC_FILE_OFFSET, _CC_OFFSET_INDEX, _CC_COLUMN_INDEX) and cf[1] == _I64:
                        cf[2] += by
                    elif cf[0] == _CC_META:
                        for mf in cf[2]:
                            if mf[0] in (_CM_DATA_PAGE, _CM_INDEX_PAGE, _CM_DICTIONARY_PAGE, _CM_BLOOM_FILTER):
                                mf[2] += by


class ParquetJoiner:
    """Parquet pieces joined into `out` one at a time, in order, as they are finished (a run
    appends each piece as soon as the pieces before it are in); `close` writes the footer and
    returns the file's size. Every piece must have the first's schema."""

    def __init__(self, out: BinaryIO):
        self.out = out
        self.base: list | None = None
        # Each row group's footer entry, moved and encoded as it comes in: parsed, an entry takes
        # ~140 KiB of Python objects (52 columns), encoded ~4 KiB, and a long run has thousands.
        self.groups: list[_Encoded] = []
        self.rows = 0
        out.write(MAGIC)
        self.written = len(MAGIC)

    def add(self, path: str | os.PathLike) -> None:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            meta, footer_at = read_footer(f, size)
            if self.base is None:
                self.base = meta
            elif _field(meta, 2)[2] != _field(self.base, 2)[2]:
                raise StitchError(f"{path}: another schema than the first piece's")
            piece_groups = _field(meta, _META_ROW_GROUPS)
            if piece_groups is None or not piece_groups[2][1]:
                return
            by = self.written - len(MAGIC)  # the piece's bytes after its own PAR1 land at `written`
            for group in piece_groups[2][1]:
                _shift_row_group(group, by, len(self.groups))
                encoded = bytearray()
                _write(encoded, _STRUCT, group)
                self.groups.append(_Encoded(encoded))
            piece_groups[2] = (_STRUCT, [])  # parsed entries dropped (the first piece's footer stays as the base)
            self.rows += _field(meta, _META_NUM_ROWS)[2]
            self.written += _copy_range(f, self.out, len(MAGIC), footer_at - len(MAGIC))

    def close(self) -> int:
        base = self.base
        if base is None:
            raise StitchError("no pieces to join")
        _field(base, _META_NUM_ROWS)[2] = self.rows
        group_field = _field(base, _META_ROW_GROUPS)
        if group_field is None:
            group_field = [_META_ROW_GROUPS, _LIST, (_STRUCT, [])]
            base.insert(next((i for i, f in enumerate(base) if f[0] > _META_ROW_GROUPS), len(base)), group_field)
        group_field[2] = (_STRUCT, self.groups)
        footer = footer_bytes(base)
        self.out.write(footer)
        self.out.write(struct.pack("<I", len(footer)))
        self.out.write(MAGIC)
        return self.written + len(footer) + 8


class TextJoiner:
    """Text pieces joined into `out` one at a time, in order: their bytes one after another; with
    `skip_first_line_after_first` (CSV headers) each piece but the first loses its first line.
    `close` returns the bytes written."""

    def __init__(self, out: BinaryIO, skip_first_line_after_first: bool = False):
        self.out = out
        self.skip = skip_first_line_after_first
        self.pieces = 0
        self.written = 0

    def add(self, path: str | os.PathLike) -> None:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            start = 0
            if self.skip and self.pieces:
                start = len(f.readline())
            self.written += _copy_range(f, self.out, start, size - start)
        self.pieces += 1

    def close(self) -> int:
        return self.written


def join_parquet(pieces: list[str | os.PathLike], out: BinaryIO) -> int:
    """Writes the Parquet files `pieces` as one file to `out` (rows in piece order); returns
    its size. Every piece must have the first's schema."""
    joiner = ParquetJoiner(out)
    for path in pieces:
        joiner.add(path)
    return joiner.close()


def join_text(pieces: list[str | os.PathLike], out: BinaryIO, skip_first_line_after_first: bool = False) -> int:
    """Writes the pieces' bytes one after another; with `skip_first_line_after_first` (CSV
    headers) each piece but the first loses its first line. Returns the bytes written."""
    joiner = TextJoiner(out, skip_first_line_after_first)
    for path in pieces:
        joiner.add(path)
    return joiner.close()


def _copy_range(src: BinaryIO, dst: BinaryIO, start: int, length: int) -> int:
    """Copies `length` bytes of `src` from `start` to the end of `dst`: in the kernel where it can."""
    if length <= 0:
        return 0
    dst.flush()
    try:
        src_fd, dst_fd = src.fileno(), dst.fileno()
    except (AttributeError, OSError):
        src_fd = dst_fd = None
    if src_fd is not None and hasattr(os, "copy_file_range"):
        done = 0
        try:
            while done < length:
                n = os.copy_file_range(src_fd, dst_fd, length - done, start + done)
                if n == 0:
                    break
                done += n
        except OSError:
            pass
        if done == length:
            dst.seek(0, os.SEEK_END)
            return length
        start, length, copied = start + done, length - done, done
    else:
        copied = 0
    src.seek(start)
    while length:
        block = src.read(min(length, 8 << 20))
        if not block:
            raise StitchError("a piece ended early")
        dst.write(block)
        length -= len(block)
        copied += len(block)
    return copied
