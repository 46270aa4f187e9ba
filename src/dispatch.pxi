# Bindings for cpp/dispatch.h, the one ISA switch (see src/README.md).
cdef extern from "dispatch.h" namespace "cnnlite":
    cdef enum class Isa "cnnlite::Isa":
        kGeneric "cnnlite::Isa::kGeneric"
        kAvx2 "cnnlite::Isa::kAvx2"
        kAvx512 "cnnlite::Isa::kAvx512"
    const char* c_isa_name "cnnlite::isa_name"(Isa level) except +
    Isa c_isa_from_name "cnnlite::isa_from_name"(const char* name) except +
    Isa c_cpu_isa_level "cnnlite::cpu_isa_level"()
    Isa c_isa "cnnlite::isa"()
    Isa c_set_isa "cnnlite::set_isa"(Isa level) except +

_ISA_LEVELS = ("avx512", "avx2", "generic")  # widest first


def set_isa(name):
    """Cap the instruction set every kernel uses ('avx512', 'avx2' or 'generic') for later calls; returns the previous
    cap. Downgrades only: a level this CPU lacks is a ValueError. Not while kernels run on other threads."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a str ('avx512', 'avx2' or 'generic'), got {type(name).__name__}")
    if name not in _ISA_LEVELS:
        raise ValueError(f"name must be 'avx512', 'avx2' or 'generic', got {name!r}")
    return c_isa_name(c_set_isa(c_isa_from_name(name.encode()))).decode()


def get_isa():
    """The instruction set the kernels use: the CPU's level, capped by set_isa."""
    return c_isa_name(c_isa()).decode()


def available_isas():
    """The levels set_isa accepts on this CPU, widest first (always ending with 'generic')."""
    cpu = c_isa_name(c_cpu_isa_level()).decode()
    return _ISA_LEVELS[_ISA_LEVELS.index(cpu):]
