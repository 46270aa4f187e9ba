# Bindings for cpp/optim.h (see src/README.md for the contract).
