"""Keras-style `model.summary()` table."""


def _fit(text, width):
    text = str(text)
    return text[:width - 1] + " " if len(text) >= width else text.ljust(width)


def _row(fields, positions):
    line, start = "", 0
    for field, end in zip(fields, positions):
        line += _fit(field, end - start)
        start = end
    return line.rstrip()


def print_summary(model, line_length=None, positions=None, print_fn=None):
    line_length = line_length or 65
    positions = positions or [0.45, 0.85, 1.0]
    if positions[-1] <= 1:
        positions = [int(line_length * p) for p in positions]
    print_fn = print_fn or print
    headers = ["Layer (type)", "Output Shape", "Param #"]
    print_fn(f'Model: "{model.name}"')
    print_fn("_" * line_length)
    print_fn(_row(headers, positions))
    print_fn("=" * line_length)
    layers = model.layers
    for i, layer in enumerate(layers):
        print_fn(_row([f"{layer.name} ({type(layer).__name__})", str(layer.output_shape),
                       str(layer.count_params())], positions))
        print_fn("=" * line_length if i == len(layers) - 1 else "_" * line_length)
    if not layers:
        print_fn("=" * line_length)
    total = sum(layer.count_params() for layer in layers)
    trainable = sum(layer.count_params() for layer in layers if layer.trainable)
    print_fn(f"Total params: {total:,}")
    print_fn(f"Trainable params: {trainable:,}")
    print_fn(f"Non-trainable params: {total - trainable:,}")
    print_fn("_" * line_length)
