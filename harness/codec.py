"""ClickHouse's compressed-block framing, as its HTTP interface takes (`decompress=1`) and
gives (`compress=1`) it: per block a 16-byte CityHash128 (v1.0.2) checksum of the rest, the
method byte (0x82 LZ4, 0x02 none), the compressed size including the 9-byte header, the
decompressed size, then the payload. LZ4 and CityHash come from PyPI's `lz4` and
`clickhouse-cityhash`."""

from __future__ import annotations

import struct

import lz4.block
from clickhouse_cityhash.cityhash import CityHash128

METHOD_NONE = 0x02
METHOD_LZ4 = 0x82
_M64 = (1 << 64) - 1


class CodecError(Exception):
    """A body that is not valid framing; `code` and `name` are ClickHouse's error for it."""

    def __init__(self, code: int, name: str, message: str):
        super().__init__(message)
        self.code, self.name = code, name


def checksum(block: bytes) -> bytes:
    """CityHash128 of `block` as ClickHouse writes it (two little-endian 64-bit halves)."""
    h = CityHash128(block)
    return struct.pack("<QQ", h >> 64, h & _M64)


def decompress_blocks(body: bytes, verify: bool = True) -> bytes:
    """The data of a sequence of compressed blocks; checksums checked unless `verify` is false."""
    out = bytearray()
    i, n = 0, len(body)
    while i < n:
        if n - i < 25:
            raise CodecError(33, "CANNOT_READ_ALL_DATA", "Cannot read all data: truncated compressed block header")
        method = body[i + 16]
        csize, dsize = struct.unpack_from("<II", body, i + 17)
        if csize < 9 or i + 16 + csize > n:
            raise CodecError(33, "CANNOT_READ_ALL_DATA", "Cannot read all data: truncated compressed block")
        block = body[i + 16 : i + 16 + csize]
        if verify and checksum(block) != body[i : i + 16]:
            raise CodecError(40, "CHECKSUM_DOESNT_MATCH", "Checksum doesn't match: corrupted data")
        if method == METHOD_LZ4:
            try:
                out += lz4.block.decompress(block[9:], uncompressed_size=dsize)
            except lz4.block.LZ4BlockError as e:
                raise CodecError(271, "CANNOT_DECOMPRESS", f"Cannot decompress LZ4 block: {e}") from None
        elif method == METHOD_NONE:
            out += block[9:]
        else:
            raise CodecError(89, "UNKNOWN_COMPRESSION_METHOD", f"Unknown compression method 0x{method:02x}")
        i += 16 + csize
    return bytes(out)


def compress_blocks(data: bytes, block_size: int = 1 << 20) -> bytes:
    """`data` in compressed blocks of LZ4."""
    out = bytearray()
    for start in range(0, len(data), block_size):
        chunk = data[start : start + block_size]
        payload = lz4.block.compress(chunk, store_size=False)
        block = struct.pack("<BII", METHOD_LZ4, 9 + len(payload), len(chunk)) + payload
        out += checksum(block) + block
    return bytes(out)
