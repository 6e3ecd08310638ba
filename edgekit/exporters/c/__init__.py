"""The C code generator behind ``export --c-source`` (see :mod:`edgekit.exporters.c_source`).

``kernels/`` holds the C itself (package data); the modules lower a model to calls of those
kernels and write ``<prefix>_model.h`` / ``<prefix>_model.c``. Imports nothing on its own.
"""
