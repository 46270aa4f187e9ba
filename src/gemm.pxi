# Bindings for cpp/gemm.h (see src/README.md for the contract).
