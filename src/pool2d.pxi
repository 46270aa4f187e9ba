# Bindings for cpp/pool2d.h (see src/README.md for the contract).
