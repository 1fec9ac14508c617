"""An image's width and height from its header, before anything is decoded: a small file can
decode to billions of pixels (a decompression bomb: a 1 MB PNG of 30000x30000 grey pixels takes
1.8 GB), so every entry point (classify, the Python API, batch, serve) reads the size first and
refuses what is over its pixel limit (`sources.decode`). JPEG, PNG, GIF, BMP, WebP, TIFF and
PNM; a multi-frame file (GIF, multi-page TIFF) counts its largest frame. Also the EXIF
orientation of JPEG and TIFF files, which OpenCV's unchanged decode ignores.

Every reader is bounded by the data it is given: a truncated or lying header gives None (or a
size the limit then judges), never an exception or a loop.
"""

from __future__ import annotations

import struct

MAX_FRAMES = 10_000        # frames or pages walked in a GIF or TIFF before giving up


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the header (the largest frame's extent for GIF and TIFF), or None
    when the format is not one of those or the header is unreadable."""
    data = bytes(data)
    try:
        if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
            return struct.unpack(">II", data[16:24])
        if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 13:
            return _gif(data)
        if data[:2] == b"BM" and len(data) >= 26:
            w, h = struct.unpack("<ii", data[18:26])
            return abs(w), abs(h)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp(data)
        if data[:2] == b"\xff\xd8":
            return _jpeg(data)
        if data[:4] in (b"II*\x00", b"MM\x00*"):
            return _tiff(data)[0]
        if data[:1] == b"P" and data[1:2] in b"123456" and len(data) > 2:
            return _pnm(data)
    except (struct.error, IndexError, ValueError):
        return None
    return None


def orientation(data: bytes) -> int:
    """The EXIF orientation (1..8) of a JPEG or TIFF; 1 (as stored) when there is none."""
    data = bytes(data)
    try:
        if data[:2] == b"\xff\xd8":
            exif = _jpeg_exif(data)
            return _tiff(exif)[1] if exif else 1
        if data[:4] in (b"II*\x00", b"MM\x00*"):
            return _tiff(data)[1]
    except (struct.error, IndexError, ValueError):
        pass
    return 1


# ------------------------------------------------------------------------------- formats

def _jpeg_segments(data: bytes):
    """(marker, payload start, payload end) of each segment before the scan."""
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return
        marker = data[i + 1]
        if marker in (0xD8, 0x01, 0xFF) or 0xD0 <= marker <= 0xD7:   # no length
            i += 1 if marker == 0xFF else 2
            continue
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        if length < 2:
            return
        yield marker, i + 4, i + 2 + length
        if marker == 0xDA:            # start of scan: the header is over
            return
        i += 2 + length


def _jpeg(data: bytes) -> tuple[int, int] | None:
    for marker, start, _ in _jpeg_segments(data):
        # start of frame (baseline, progressive, lossless...), not DHT/JPG/DAC
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", data[start + 1:start + 5])
            return w, h
    return None


def _jpeg_exif(data: bytes) -> bytes | None:
    for marker, start, end in _jpeg_segments(data):
        if marker == 0xE1 and data[start:start + 6] == b"Exif\x00\x00":
            return data[start + 6:end]
    return None


def _gif(data: bytes) -> tuple[int, int]:
    """The logical screen, grown to every frame's extent (a frame may lie outside it)."""
    w, h, flags = struct.unpack("<HHB", data[6:11])
    i = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    for _ in range(MAX_FRAMES):
        if i >= len(data) or data[i] == 0x3B:          # trailer
            break
        if data[i] == 0x21:                            # extension: label, then sub-blocks
            i = _gif_blocks(data, i + 2)
        elif data[i] == 0x2C:                          # image descriptor
            left, top, fw, fh, fflags = struct.unpack("<HHHHB", data[i + 1:i + 10])
            w, h = max(w, left + fw), max(h, top + fh)
            i += 10 + (3 << ((fflags & 7) + 1) if fflags & 0x80 else 0)
            i = _gif_blocks(data, i + 1)              # after the LZW minimum code size
        else:
            break
    return w, h


def _gif_blocks(data: bytes, i: int) -> int:
    while i < len(data) and data[i]:
        i += data[i] + 1
    return i + 1


def _webp(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        w = 1 + int.from_bytes(data[24:27], "little")
        h = 1 + int.from_bytes(data[27:30], "little")
        return w, h
    if chunk == b"VP8 " and len(data) >= 30:
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def _tiff(data: bytes) -> tuple[tuple[int, int] | None, int]:
    """(the largest page's (width, height) or None, the first page's orientation), from every
    IFD of a TIFF (or of a JPEG's EXIF block, which is one)."""
    end = "<" if data[:2] == b"II" else ">"
    (offset,) = struct.unpack(end + "I", data[4:8])
    size, turn, seen = None, 1, set()
    for page in range(MAX_FRAMES):
        if not offset or offset in seen or offset + 2 > len(data):
            break
        seen.add(offset)
        (count,) = struct.unpack(end + "H", data[offset:offset + 2])
        tags = {}
        for k in range(count):
            at = offset + 2 + 12 * k
            if at + 12 > len(data):
                break
            tag, kind = struct.unpack(end + "HH", data[at:at + 4])
            if tag in (256, 257, 274):                # width, length, orientation
                fmt = end + ("H" if kind == 3 else "I")
                tags[tag] = struct.unpack_from(fmt, data, at + 8)[0]
        if 256 in tags and 257 in tags:
            w, h = tags[256], tags[257]
            size = (w, h) if size is None else (max(size[0], w), max(size[1], h))
        if page == 0 and tags.get(274) in range(1, 9):
            turn = tags[274]
        at = offset + 2 + 12 * count
        offset = struct.unpack(end + "I", data[at:at + 4])[0] if at + 4 <= len(data) else 0
    return size, turn


def _pnm(data: bytes) -> tuple[int, int] | None:
    """P1..P6: width and height are the first two numbers after the magic, comments skipped."""
    numbers, i = [], 2
    head = data[:4096]
    while len(numbers) < 2 and i < len(head):
        c = head[i:i + 1]
        if c == b"#":
            while i < len(head) and head[i:i + 1] not in (b"\n", b"\r"):
                i += 1
        elif c.isdigit():
            j = i
            while j < len(head) and head[j:j + 1].isdigit():
                j += 1
            numbers.append(int(head[i:j]))
            i = j
            continue
        elif not c.isspace():
            return None
        i += 1
    return (numbers[0], numbers[1]) if len(numbers) == 2 else None
