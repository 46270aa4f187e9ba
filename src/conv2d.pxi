# Bindings for cpp/conv2d.h (see src/README.md for the contract).
