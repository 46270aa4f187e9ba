# Bindings for cpp/dropout.h (see src/README.md for the contract).
