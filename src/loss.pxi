# Bindings for cpp/loss.h (see src/README.md for the contract).
