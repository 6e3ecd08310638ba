"""The C writers behind ``--c-source``: ``float32`` (from Keras) and ``int8`` (from TFLite)."""
