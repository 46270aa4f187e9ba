# Bindings for cpp/dense.h (see src/README.md for the contract).
