"""The standard LiteRT (TFLite) model metadata that Android and iOS toolchains read: a
`ModelMetadata` flatbuffer (file identifier "M001", schema tensorflow_lite_support/metadata/
metadata_schema.fbs) stored in the model's `metadata` list under the name "TFLITE_METADATA", with
its associated files (here `labels.txt`) appended to the model as a zip archive, as the official
MetadataPopulator lays them out. Written with the `flatbuffers` builder alone (tflite-support pins
an old protobuf that TensorFlow cannot share an environment with).

What it says: the model's name and description, version, author and licence; the input is a
48x48 grayscale image of raw grey levels (normalisation mean 0, std 1: the model rescales
internally) with value range 0..255; the output's 7 scores are labelled by `labels.txt`
(TENSOR_AXIS_LABELS), in fer-edge's label order.
"""

from __future__ import annotations

import io
import zipfile

import flatbuffers

METADATA_NAME = "TFLITE_METADATA"
FILE_IDENTIFIER = b"M001"
MIN_PARSER_VERSION = "1.0.0"     # nothing newer than the schema's 1.0.0 fields is used
LABELS_FILE = "labels.txt"

# Enum values and union tags of metadata_schema.fbs.
COLOR_SPACE_GRAYSCALE = 2
CONTENT_IMAGE_PROPERTIES = 2      # ContentProperties: FeatureProperties=1, ImageProperties=2
CONTENT_FEATURE_PROPERTIES = 1
UNIT_NORMALIZATION_OPTIONS = 1    # ProcessUnitOptions: NormalizationOptions=1
FILE_TENSOR_AXIS_LABELS = 2       # AssociatedFileType


class _Tables:
    """Tables of the metadata schema, written field by field (slot = the field's index in the
    .fbs; a union takes two slots, its type then its value)."""

    def __init__(self, builder: flatbuffers.Builder):
        self.b = builder

    def string(self, text: str) -> int:
        return self.b.CreateString(text)

    def vector(self, offsets: list[int]) -> int:
        self.b.StartVector(4, len(offsets), 4)
        for off in reversed(offsets):
            self.b.PrependUOffsetTRelative(off)
        return self.b.EndVector()

    def floats(self, values: list[float]) -> int:
        self.b.StartVector(4, len(values), 4)
        for v in reversed(values):
            self.b.PrependFloat32(v)
        return self.b.EndVector()

    def table(self, n_slots: int, fields: list[tuple]) -> int:
        """fields: (slot, kind, value) with kind "off" (an offset), "u8", "i8", "u32", "i32"."""
        b = self.b
        b.StartObject(n_slots)
        for slot, kind, value in fields:
            if kind == "off":
                b.PrependUOffsetTRelativeSlot(slot, value, 0)
            elif kind == "u8":
                b.PrependUint8Slot(slot, value, 0)
            elif kind == "i8":
                b.PrependInt8Slot(slot, value, 0)
            elif kind == "u32":
                b.PrependUint32Slot(slot, value, 0)
            elif kind == "i32":
                b.PrependInt32Slot(slot, value, 0)
        return b.EndObject()


def model_metadata(name: str, description: str, version: str, author: str, licence: str,
                   labels: list[str], input_size: tuple[int, int]) -> bytes:
    """The ModelMetadata flatbuffer."""
    b = flatbuffers.Builder(1024)
    t = _Tables(b)
    # input: a grayscale image, raw grey levels 0..255
    size = t.table(2, [(0, "u32", input_size[0]), (1, "u32", input_size[1])])   # ImageSize
    image = t.table(2, [(0, "i8", COLOR_SPACE_GRAYSCALE), (1, "off", size)])    # ImageProperties
    value_range = t.table(2, [(0, "i32", 0), (1, "i32", 255)])                 # ValueRange
    content_in = t.table(3, [(0, "u8", CONTENT_IMAGE_PROPERTIES), (1, "off", image),
                             (2, "off", value_range)])                         # Content
    norm = t.table(2, [(0, "off", t.floats([0.0])), (1, "off", t.floats([1.0]))])
    unit = t.table(2, [(0, "u8", UNIT_NORMALIZATION_OPTIONS), (1, "off", norm)])  # ProcessUnit
    stats_in = t.table(2, [(0, "off", t.floats([255.0])), (1, "off", t.floats([0.0]))])
    tensor_in = t.table(7, [
        (0, "off", t.string("image")),
        (1, "off", t.string(f"A {input_size[0]}x{input_size[1]} grayscale face crop, raw grey "
                            f"levels 0..255 (the model rescales them itself).")),
        (3, "off", content_in), (4, "off", t.vector([unit])), (5, "off", stats_in)])
    # output: 7 probabilities, labelled by labels.txt
    labels_file = t.table(5, [(0, "off", t.string(LABELS_FILE)),
                              (1, "off", t.string("The emotion of each output score, in order.")),
                              (2, "i8", FILE_TENSOR_AXIS_LABELS)])                # AssociatedFile
    feature = t.table(0, [])                                                     # FeatureProperties
    content_out = t.table(3, [(0, "u8", CONTENT_FEATURE_PROPERTIES), (1, "off", feature)])
    stats_out = t.table(2, [(0, "off", t.floats([1.0])), (1, "off", t.floats([0.0]))])
    tensor_out = t.table(7, [
        (0, "off", t.string("probability")),
        (1, "off", t.string(f"Probabilities of the {len(labels)} emotions (softmax).")),
        (3, "off", content_out), (5, "off", stats_out),
        (6, "off", t.vector([labels_file]))])
    subgraph = t.table(10, [(2, "off", t.vector([tensor_in])),
                            (3, "off", t.vector([tensor_out]))])                 # SubGraphMetadata
    root = t.table(8, [
        (0, "off", t.string(name)), (1, "off", t.string(description)),
        (2, "off", t.string(version)), (3, "off", t.vector([subgraph])),
        (4, "off", t.string(author)), (5, "off", t.string(licence)),
        (7, "off", t.string(MIN_PARSER_VERSION))])                                # ModelMetadata
    b.Finish(root, file_identifier=FILE_IDENTIFIER)
    return bytes(b.Output())


def add(model_buf: bytes, record: dict) -> bytes:
    """The model with the standard metadata (replacing earlier standard metadata) and
    labels.txt appended as a zip archive."""
    from fer_edge.edge import tflite_meta

    labels = list(record["labels"])
    quantize = record.get("quantize", "float32")
    meta = model_metadata(
        name=f"fer-edge facial emotion ({record.get('arch', 'cnn')}, {quantize})",
        description=("Classifies a 48x48 grayscale face crop into 7 emotions (FER2013 labels: "
                     + ", ".join(labels) + "). Detect and crop the face first."),
        version=str(record.get("fer_edge_version", "")), author="fer-edge",
        licence="MIT", labels=labels, input_size=tuple(record.get("input_size", (48, 48))))
    # set_metadata re-packs the flatbuffer, which also drops a zip appended earlier
    buf = tflite_meta.set_metadata(model_buf, METADATA_NAME, meta)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as z:
        z.writestr(LABELS_FILE, "\n".join(labels) + "\n")
    return buf + archive.getvalue()
