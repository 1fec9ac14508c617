"""The edge runtime: everything `fer-edge classify` and `fer_edge.Classifier` run, on LiteRT, numpy
and OpenCV only. Nothing in this package imports TensorFlow or Keras (a test imports every module
here with both made unimportable), so a device needs only `pip install fer-edge`.

  preprocessing  labels, and how a face becomes the model's input (shared with training)
  detect         face detectors (BlazeFace on LiteRT, OpenCV Haar)
  runtime        the emotion .tflite on LiteRT (a .onnx on onnxruntime, the onnx extra)
  tflite_meta    fer-edge's record inside a .tflite
  sources        images, folders, videos, cameras, streams, stdin
  track          face identity across frames, smoothing, summaries
  outputs        result lines, annotated images and videos
  classify       the Classifier API and the classify command
  fileio         atomic, no-clobber writes
"""
