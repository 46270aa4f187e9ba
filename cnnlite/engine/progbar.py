"""Keras-style progress output.

verbose=1 on a terminal: a bar redrawn in place (at most every `interval` seconds), e.g.
    60/60 [==============================] - 1s 21ms/step - loss: 0.4513 - acc: 0.8828
verbose=1 when the output is not a terminal: that final line only, once per epoch (no flood of partial bars).
verbose=2: one line per epoch, `60/60 - 1s - loss: 0.4513 - acc: 0.8828 - 1s/epoch - 21ms/step`.
"""
import sys
import time


def _is_interactive(stream):
    try:
        if stream.isatty():
            return True
    except (AttributeError, ValueError):
        pass
    return "ipykernel" in sys.modules


def format_time(seconds, unit):
    if seconds >= 1 or seconds == 0:
        return f"{seconds:.0f}s/{unit}"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/{unit}"
    return f"{seconds * 1e6:.0f}us/{unit}"


def format_eta(seconds):
    if seconds > 3600:
        return "%d:%02d:%02d" % (seconds // 3600, (seconds % 3600) // 60, seconds % 60)
    if seconds > 60:
        return "%d:%02d" % (seconds // 60, seconds % 60)
    return "%ds" % seconds


def format_values(values):
    parts = []
    for name, value in values:
        parts.append(f" - {name}: {value:.4f}" if abs(value) > 1e-3 else f" - {name}: {value:.4e}")
    return "".join(parts)


class Progbar:
    def __init__(self, target, verbose=1, width=30, interval=0.05, unit_name="step", stream=None):
        self.target = target
        self.verbose = verbose
        self.width = width
        self.interval = interval
        self.unit_name = unit_name
        self.stream = stream if stream is not None else sys.stdout
        self.dynamic = _is_interactive(self.stream)
        self._start = time.perf_counter()
        self._last_update = 0.0
        self._total_width = 0

    def _write(self, text):
        self.stream.write(text)
        self.stream.flush()

    def _bar(self, current):
        digits = len(str(self.target))
        text = f"{current:{digits}d}/{self.target} ["
        filled = int(self.width * current / self.target) if self.target else self.width
        if filled > 0:
            text += "=" * (filled - 1) + (">" if current < self.target else "=")
        return text + "." * (self.width - filled) + "]"

    def update(self, current, values=(), finalize=False):
        """Show progress after `current` of `target` steps; `values` is a list of (name, float)."""
        if self.verbose == 0:
            return
        now = time.perf_counter()
        elapsed = now - self._start
        per_unit = elapsed / current if current else 0.0
        if self.verbose == 2 or not self.dynamic:
            if not finalize:
                return
            if self.verbose == 2:
                line = f"{current}/{self.target} - {elapsed:.0f}s{format_values(values)} - " \
                       f"{format_time(elapsed, 'epoch' if self.unit_name == 'step' else 'call')} - " \
                       f"{format_time(per_unit, self.unit_name)}"
            else:
                line = f"{self._bar(current)} - {elapsed:.0f}s {format_time(per_unit, self.unit_name)}" \
                       f"{format_values(values)}"
            self._write(line + "\n")
            return
        if not finalize and now - self._last_update < self.interval:
            return
        self._last_update = now
        line = self._bar(current)
        if finalize or current >= self.target:
            line += f" - {elapsed:.0f}s {format_time(per_unit, self.unit_name)}"
        else:
            line += f" - ETA: {format_eta(per_unit * (self.target - current))}"
        line += format_values(values)
        previous = self._total_width
        self._total_width = len(line)
        if previous > len(line):
            line += " " * (previous - len(line))
        self._write("\r" + line + ("\n" if finalize else ""))
