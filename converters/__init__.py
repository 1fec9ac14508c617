"""TFLite converters (installed as fer_edge.converters)."""
