# Bindings for cpp/activations.h (see src/README.md for the contract).
