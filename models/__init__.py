"""The shipped default models (installed as fer_edge.models)."""
