"""The record every fer-edge `.tflite` carries: labels, input size, colour mode, normalisation and
int8 quantization parameters, stored as JSON in the flatbuffer's `metadata` list (name
"fer_edge"). Reading and writing need only `flatbuffers` and LiteRT's generated schema, never
TensorFlow, so the edge runtime can read it.
"""

from __future__ import annotations

import json

METADATA_NAME = "fer_edge"
FORMAT = "fer-edge/1"


def _schema():
    from ai_edge_litert import schema_py_generated as schema

    return schema


def is_tflite(buf: bytes) -> bool:
    # The flatbuffer file identifier of TFLite models ("TFL3") sits at bytes 4..8.
    return len(buf) >= 8 and buf[4:8] == b"TFL3"


def read(buf: bytes) -> dict | None:
    """The fer-edge record of a model, or None when it has none (a foreign model)."""
    schema = _schema()
    model = schema.Model.GetRootAs(buf, 0)
    for i in range(model.MetadataLength()):
        md = model.Metadata(i)
        if md.Name() and md.Name().decode() == METADATA_NAME:
            data = model.Buffers(md.Buffer()).DataAsNumpy()
            return json.loads(bytes(data).decode("utf-8"))
    return None


def write(buf: bytes, record: dict) -> bytes:
    """Return the model with `record` embedded (replacing an earlier fer-edge record)."""
    payload = json.dumps({"format": FORMAT, **record}, sort_keys=True).encode("utf-8")
    return set_metadata(buf, METADATA_NAME, payload)


def set_metadata(buf: bytes, name: str, payload: bytes) -> bytes:
    """The model with `payload` as its metadata entry `name` (replacing an earlier one). The
    flatbuffer is re-packed, so anything appended after it (an associated-files zip) is not
    kept: add the standard metadata last (converters/metadata.py)."""
    import flatbuffers

    schema = _schema()
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(buf, 0))
    model.metadata = [m for m in (model.metadata or [])
                      if (m.name.decode() if isinstance(m.name, bytes) else m.name) != name]
    buffer = schema.BufferT()
    buffer.data = list(payload)
    model.buffers.append(buffer)
    md = schema.MetadataT()
    md.name = name
    md.buffer = len(model.buffers) - 1
    model.metadata.append(md)
    builder = flatbuffers.Builder(len(buf) + len(payload) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
