"""Microcontrollers and app toolchains: the C++ export for TFLite Micro (compiles; the array is the
model; the micro interpreter gives LiteRT's answers) and the standard LiteRT metadata every
exported .tflite carries (read back field by field, labels attached, behaviour unchanged)."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import zipfile

import numpy as np
import pytest

from fer_edge.converters import metadata, micro
from fer_edge.edge import tflite_meta
from fer_edge.edge.preprocessing import LABELS
from fer_edge.edge.runtime import EmotionModel
from fer_edge.errors import FerEdgeError


@pytest.fixture(scope="module")
def sources(tiny_tflite_int8, tmp_path_factory):
    model = tmp_path_factory.mktemp("micro") / "fer_int8.tflite"
    shutil.copy(tiny_tflite_int8, model)
    header, source, facts = micro.write_sources(model)
    return model, header, source, facts


def test_the_array_is_the_model(sources):
    model, header, source, facts = sources
    text = source.read_text()
    body = text[text.index("fer_int8_model[] = {"):text.index("};")]
    data = bytes(int(h, 16) for h in re.findall(r"0x([0-9a-f]{2})", body))
    assert data == model.read_bytes()
    assert f"fer_int8_model_len = {len(data)};" in text
    assert "alignas(16) const unsigned char fer_int8_model[]" in text
    assert 'fer_int8_labels[7] = {"angry", "disgust", "fear", "happy", "sad", "surprise", ' \
        '"neutral"}' in text


def test_the_header_states_quantization_ops_and_arena(sources):
    model, header, _, facts = sources
    text = header.read_text()
    tensors = tflite_meta.read(model.read_bytes())["tensors"]
    assert f"fer_int8_input_zero_point = {tensors['input']['zero_point']};" in text
    assert f"fer_int8_output_scale = {tensors['output']['scale']!r}f;" in text
    assert f"fer_int8_tensor_arena_size = {facts['arena_bytes']};" in text
    for op in facts["ops"]:
        assert f"resolver.{micro.MICRO_OPS[op]}()" in text
    # the measured arena is the smallest that works: 16 bytes less does not
    buf = model.read_bytes()
    assert micro._runs_with(buf, facts["arena_min_bytes"])
    assert not micro._runs_with(buf, facts["arena_min_bytes"] - 16)
    assert facts["arena_bytes"] >= facts["arena_min_bytes"]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")
def test_generated_source_compiles(sources, tmp_path):
    _, header, source, _ = sources
    for path in (header, source):
        shutil.copy(path, tmp_path / path.name)
    main = tmp_path / "use.cc"
    main.write_text('#include "fer_int8_model.h"\n'
                    'unsigned int first() { return fer_int8_model[4] + fer_int8_model_len '
                    '+ fer_int8_tensor_arena_size + fer_int8_num_labels; }\n')
    for unit in ("fer_int8_model.cc", "use.cc"):
        p = subprocess.run(["g++", "-std=c++17", "-Wall", "-Werror", "-c", unit],
                           cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr


def test_micro_interpreter_gives_litert_answers(sources):
    from fer_edge.evaluate import _MicroVariant

    model = sources[0]
    faces = np.random.default_rng(1).integers(0, 256, (24, 48, 48), dtype=np.uint8)
    lite = EmotionModel(model).predict(faces)
    tiny = _MicroVariant(model).predict(faces)
    assert (tiny.argmax(1) == lite.argmax(1)).all()
    np.testing.assert_allclose(tiny, lite, atol=1 / 256 + 1e-6)   # within one int8 step


def test_an_op_micro_lacks_fails_in_one_line():
    with pytest.raises(FerEdgeError, match="^m.tflite uses CUSTOM, which TFLite Micro has no "
                                           "kernel for"):
        micro.check_ops(["CONV_2D", "CUSTOM"], "m.tflite")


def test_export_target_micro_needs_int8(tmp_path, capsys):
    from fer_edge.cli import main

    (tmp_path / "m.keras").touch()
    rc = main(["export", "--model", str(tmp_path / "m.keras"), "--quantize", "float16",
               "--target", "micro"])
    err = capsys.readouterr().err
    assert rc == 2 and "--target micro needs --quantize int8" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.keras"]


# --------------------------------------------------------------------- standard metadata

def _table(buf: bytes, pos: int):
    import flatbuffers

    t = flatbuffers.table.Table(bytearray(buf), pos)
    return t


def _string(t, slot: int) -> str | None:
    o = t.Offset(4 + 2 * slot)
    return t.String(o + t.Pos).decode() if o else None


def _child(t, slot: int):
    import flatbuffers

    o = t.Offset(4 + 2 * slot)
    return flatbuffers.table.Table(t.Bytes, t.Indirect(o + t.Pos)) if o else None


def _vector_item(t, slot: int, i: int):
    import flatbuffers

    o = t.Offset(4 + 2 * slot)
    start = t.Vector(o) + 4 * i
    return flatbuffers.table.Table(t.Bytes, t.Indirect(start))


def test_standard_metadata_reads_back(tiny_tflite_int8):
    """Every exported model carries TFLITE_METADATA (file identifier M001) and labels.txt."""
    from ai_edge_litert import schema_py_generated as schema

    buf = tiny_tflite_int8.read_bytes()
    model = schema.Model.GetRootAs(buf, 0)
    entries = {model.Metadata(i).Name().decode(): model.Metadata(i).Buffer()
               for i in range(model.MetadataLength())}
    assert {"fer_edge", metadata.METADATA_NAME} <= set(entries)
    meta = bytes(model.Buffers(entries[metadata.METADATA_NAME]).DataAsNumpy())
    assert meta[4:8] == metadata.FILE_IDENTIFIER
    import flatbuffers

    root = _table(meta, flatbuffers.encode.Get(flatbuffers.packer.uoffset, meta, 0))
    assert _string(root, 0).startswith("fer-edge facial emotion (tiny, int8)")
    assert _string(root, 7) == metadata.MIN_PARSER_VERSION
    subgraph = _vector_item(root, 3, 0)
    out = _vector_item(subgraph, 3, 0)
    assert _string(out, 0) == "probability"
    labels_file = _vector_item(out, 6, 0)
    assert _string(labels_file, 0) == "labels.txt"
    inp = _vector_item(subgraph, 2, 0)
    image = _child(_child(inp, 3), 1)
    assert image.Get(flatbuffers.number_types.Int8Flags, image.Offset(4) + image.Pos) == \
        metadata.COLOR_SPACE_GRAYSCALE
    # the labels file rides along as a zip appended to the model
    archive = zipfile.ZipFile(io.BytesIO(buf))
    assert archive.read("labels.txt").decode().split() == list(LABELS)


def test_metadata_changes_nothing_for_litert_and_classify(tiny_tflite_int8, tmp_path):
    buf = tiny_tflite_int8.read_bytes()
    bare = tflite_meta.set_metadata(buf, "TFLITE_METADATA", b"")    # drops the zip as well
    faces = np.random.default_rng(2).integers(0, 256, (8, 48, 48), dtype=np.uint8)
    with_meta = EmotionModel(tiny_tflite_int8).predict(faces)
    path = tmp_path / "bare.tflite"           # not beside the committed model
    path.write_bytes(bare)
    np.testing.assert_array_equal(EmotionModel(path).predict(faces), with_meta)
    assert tflite_meta.read(buf)["labels"] == list(LABELS)


def test_export_target_micro_writes_the_sources(synth_data, tmp_path):
    from fer_edge.training import archs
    from fer_edge.export import export

    archs.build("tiny").save(tmp_path / "tiny.keras")
    written = export(tmp_path / "tiny.keras", quantize="int8", data=synth_data, calib=8,
                     target="micro")
    assert [p.name for p in written] == ["fer_int8.tflite", "fer_int8_model.h",
                                         "fer_int8_model.cc"]
    assert "fer_int8_tensor_arena_size = " in (tmp_path / "fer_int8_model.h").read_text()
