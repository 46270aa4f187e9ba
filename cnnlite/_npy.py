"""Reading a .npy header without reading (or allocating) the array it describes, shared by every loader."""
import struct
import tokenize

import numpy as np

_HEADER_ERRORS = (ValueError, EOFError, OSError, SyntaxError, TypeError, struct.error, UnicodeDecodeError,
                  tokenize.TokenError)


def read_npy_header(stream):
    """(shape, fortran_order, dtype) from the .npy header at the start of binary `stream`, leaving the stream at the
    data. Any damage (a bad magic, an unsupported version, a header numpy cannot parse) is a ValueError saying what;
    numpy's own parser raises half a dozen types for such bytes."""
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            return np.lib.format.read_array_header_1_0(stream)
        if version == (2, 0):
            return np.lib.format.read_array_header_2_0(stream)
        raise ValueError(f"unsupported .npy format version {version}")
    except _HEADER_ERRORS as exc:
        raise ValueError(str(exc) or type(exc).__name__) from None
