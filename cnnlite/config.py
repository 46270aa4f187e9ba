"""Library-wide switches; environment variables only set their defaults."""
import os
import warnings

_ISA_ORDER = ("generic", "avx2", "avx512")


def _apply_isa_default():
    """Cap the kernels' instruction set at $CNNLITE_ISA ('avx512', 'avx2' or 'generic'; also, for compatibility, the
    older CNNLITE_GEMM_ISA / CNNLITE_OPS_ISA, which now cap every kernel): the lowest level named wins. A level above
    the CPU's changes nothing; an unknown name is ignored with a warning."""
    from cnnlite import _kernels

    wanted = []
    for var in ("CNNLITE_ISA", "CNNLITE_GEMM_ISA", "CNNLITE_OPS_ISA"):
        value = os.environ.get(var)
        if not value:
            continue
        if value not in _ISA_ORDER:
            warnings.warn(f"{var}={value!r} is not one of {', '.join(_ISA_ORDER)}; ignored", RuntimeWarning)
            continue
        wanted.append(value)
    if not wanted:
        return
    level = min(wanted, key=_ISA_ORDER.index)
    available = _kernels.available_isas()
    if level in available:
        _kernels.set_isa(level)
