"""An emotion `.tflite` as LiteRT.js can run it: float32 ends and a fixed batch of one.

LiteRT.js 2.5 runs int8 models but its JavaScript tensors are float32, int32 or uint8 only: it
refuses to load a model whose input or output is int8. `for_page` rewrites the model's
flatbuffer so a QUANTIZE operator feeds its int8 input from a float32 one and a DEQUANTIZE
operator reads its int8 output into a float32 one; every other operator, weight and record (the
fer-edge metadata) is kept. It also drops the tensors' shape signatures (batch -1, "any"):
LiteRT.js then refuses a batch-1 tensor for them, and the page classifies one face per call. QUANTIZE computes round(x / scale + zero_point) and DEQUANTIZE (q - zero_point) * scale,
the arithmetic EmotionModel.quantize / dequantize do in Python (edge/runtime.py), so the page's
scores are the CLI's. Needs only flatbuffers and LiteRT's generated schema (no TensorFlow).
"""

from __future__ import annotations

from ..errors import FerEdgeError

# Operator versions that take int8 (TFLite's op versioning: version 1 is uint8 only).
_OP_VERSION = 2


def _schema():
    from ai_edge_litert import schema_py_generated as schema

    return schema


def needs_float_io(buf: bytes) -> bool:
    """Whether the model's first input or output is int8 (what LiteRT.js cannot hold)."""
    schema = _schema()
    graph = schema.Model.GetRootAs(buf, 0).Subgraphs(0)
    ends = (graph.Tensors(graph.Inputs(0)), graph.Tensors(graph.Outputs(0)))
    return any(t.Type() == schema.TensorType.INT8 for t in ends)


def for_page(buf: bytes) -> bytes:
    """The model with float32 ends around an int8 input and output and static shapes (see the
    module's text)."""
    import flatbuffers

    schema = _schema()
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(buf, 0))
    if len(model.subgraphs) != 1 or len(model.subgraphs[0].inputs) != 1 \
            or len(model.subgraphs[0].outputs) != 1:
        raise FerEdgeError("--target web takes an emotion model of one input and one output")
    graph = model.subgraphs[0]
    old_in, old_out = graph.inputs[0], graph.outputs[0]
    if graph.tensors[old_in].type == schema.TensorType.INT8:
        new_in = _float_twin(model, graph, old_in, "web_float_input")
        graph.operators.insert(0, _operator(model, schema.BuiltinOperator.QUANTIZE, new_in,
                                            old_in))
        graph.inputs = [new_in]
    if graph.tensors[old_out].type == schema.TensorType.INT8:
        new_out = _float_twin(model, graph, old_out, "web_float_output")
        graph.operators.append(_operator(model, schema.BuiltinOperator.DEQUANTIZE, old_out,
                                         new_out))
        graph.outputs = [new_out]
    for signature in model.signatureDefs or []:
        for end in signature.inputs or []:
            end.tensorIndex = graph.inputs[0] if end.tensorIndex == old_in else end.tensorIndex
        for end in signature.outputs or []:
            end.tensorIndex = graph.outputs[0] if end.tensorIndex == old_out else end.tensorIndex
    for tensor in graph.tensors:
        tensor.shapeSignature = None      # static: the shape itself, batch 1
    builder = flatbuffers.Builder(len(buf) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _float_twin(model, graph, index: int, name: str) -> int:
    """A new float32 tensor of tensor `index`'s shape (with an empty buffer of its own)."""
    schema = _schema()
    like = graph.tensors[index]
    tensor = schema.TensorT()
    tensor.name = name
    tensor.shape = like.shape
    tensor.type = schema.TensorType.FLOAT32
    model.buffers.append(schema.BufferT())
    tensor.buffer = len(model.buffers) - 1
    graph.tensors.append(tensor)
    return len(graph.tensors) - 1


def _operator(model, code: int, source: int, target: int):
    """An operator `code` from tensor `source` to `target` (its operator code added once)."""
    schema = _schema()
    codes = model.operatorCodes
    k = next((i for i, c in enumerate(codes) if max(c.builtinCode, c.deprecatedBuiltinCode)
              == code), None)
    if k is None:
        entry = schema.OperatorCodeT()
        entry.builtinCode = code
        entry.deprecatedBuiltinCode = min(code, schema.BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES)
        entry.version = _OP_VERSION
        codes.append(entry)
        k = len(codes) - 1
    else:
        codes[k].version = max(codes[k].version, _OP_VERSION)
    op = schema.OperatorT()
    op.opcodeIndex = k
    op.inputs, op.outputs = [source], [target]
    if code == schema.BuiltinOperator.QUANTIZE:
        op.builtinOptionsType = schema.BuiltinOptions.QuantizeOptions
        op.builtinOptions = schema.QuantizeOptionsT()
    else:
        op.builtinOptionsType = schema.BuiltinOptions.DequantizeOptions
        op.builtinOptions = schema.DequantizeOptionsT()
    return op
