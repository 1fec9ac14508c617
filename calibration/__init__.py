"""Int8 calibration subsets of FER2013 Training (installed as fer_edge.calibration).

The manifests here hold image ids only, never pixels."""
