"""Keras-style `model.summary()` table."""


def _rows(fields, positions):
    """Lines of one table row; text too long for its column continues on the next line (as Keras)."""
    left = [str(f) for f in fields]
    widths = [end - start - 1 for start, end in zip([0] + positions[:-1], positions)]
    widths[-1] += 1
    lines = []
    while any(left) or not lines:
        line = ""
        for i, width in enumerate(widths):
            line += left[i][:width].ljust(width + (1 if i < len(widths) - 1 else 0))
            left[i] = left[i][width:]
        lines.append(line.rstrip())
    return lines


def print_summary(model, line_length=None, positions=None, print_fn=None):
    line_length = line_length or 65
    positions = positions or [0.45, 0.85, 1.0]
    if positions[-1] <= 1:
        positions = [int(line_length * p) for p in positions]
    print_fn = print_fn or print
    headers = ["Layer (type)", "Output Shape", "Param #"]
    print_fn(f'Model: "{model.name}"')
    print_fn("_" * line_length)
    for line in _rows(headers, positions):
        print_fn(line)
    print_fn("=" * line_length)
    layers = model.layers
    for i, layer in enumerate(layers):
        for line in _rows([f"{layer.name} ({type(layer).__name__})", str(layer.output_shape),
                           str(layer.count_params())], positions):
            print_fn(line)
        print_fn("=" * line_length if i == len(layers) - 1 else "_" * line_length)
    if not layers:
        print_fn("=" * line_length)
    total = sum(layer.count_params() for layer in layers)
    trainable = sum(layer.count_params() for layer in layers if layer.trainable)
    print_fn(f"Total params: {total:,}")
    print_fn(f"Trainable params: {trainable:,}")
    print_fn(f"Non-trainable params: {total - trainable:,}")
    print_fn("_" * line_length)
