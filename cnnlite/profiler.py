"""Where training time goes, per layer: `with cnnlite.profile() as prof: model.fit(...)`, then `print(prof)`.

While a profiler is active, fit / evaluate / predict (and the *_on_batch calls) run a timed step function that
wraps each layer's forward and backward call, the loss kernel and the optimizer update in time.perf_counter();
the wall time of the batch loop is measured too, and whatever it holds beyond those calls (batch slicing,
shuffling, metrics, callbacks, the progress bar) is reported as 'other', so every table's rows add up to its wall
time. A call decides once, when it starts, whether it is profiled: with no profiler active the engine runs exactly
the unprofiled code path. Profilers nest: every profiler active when a call starts records it. Not thread-safe:
profile one training at a time per process.
"""
import time

_ACTIVE = []  # the Profile objects recording now, outermost first

_PHASES = (("train", "Training steps (fit / train_on_batch)"),
           ("evaluate", "Evaluation (evaluate / test_on_batch / fit validation)"),
           ("predict", "Prediction (predict / predict_on_batch / model(x))"))
_HEADERS = ("Row", "Output shape", "Calls", "Fwd ms", "Fwd ms/call", "Bwd ms", "Bwd ms/call", "Total ms", "% wall")


class _Row:
    __slots__ = ("name", "kind", "output_shape", "fwd_s", "fwd_calls", "bwd_s", "bwd_calls")

    def __init__(self, name, kind, output_shape=""):
        self.name, self.kind, self.output_shape = name, kind, output_shape
        self.fwd_s = self.bwd_s = 0.0
        self.fwd_calls = self.bwd_calls = 0


class _Phase:
    """Everything one profiler measured for one phase (train, evaluate or predict)."""

    def __init__(self):
        self.rows = {}       # key -> _Row, in first-seen order (layers in model order)
        self.wall_s = 0.0
        self.steps = 0
        self.samples = 0

    def row(self, key, name, kind, output_shape=""):
        row = self.rows.get(key)
        if row is None:
            row = self.rows[key] = _Row(name, kind, output_shape)
        return row


def _layer_key(layer):
    shape = ""
    try:
        shape = str(tuple(layer.output_shape))
    except Exception:  # an unbuilt or unusual layer: the row just has no shape
        pass
    return ("layer", id(layer)), layer.name, type(layer).__name__, shape


class _Timer:
    """Handed to the engine for one profiled call: adds measurements to every profiler active when it began."""
    __slots__ = ("_phases", "_layer_keys")

    def __init__(self, phase, profiles):
        self._phases = [p._phases[phase] for p in profiles]
        self._layer_keys = {}

    def layer(self, layer, backward, seconds):
        key = self._layer_keys.get(id(layer))
        if key is None:
            key = self._layer_keys[id(layer)] = _layer_key(layer)
        for phase in self._phases:
            row = phase.row(*key)
            if backward:
                row.bwd_s += seconds
                row.bwd_calls += 1
            else:
                row.fwd_s += seconds
                row.fwd_calls += 1

    def op(self, name, kind, seconds):
        """A non-layer row (the loss, the optimizer update); its time counts as forward time."""
        for phase in self._phases:
            row = phase.row(("op", name), name, kind)
            row.fwd_s += seconds
            row.fwd_calls += 1

    def wall(self, seconds, steps, samples):
        for phase in self._phases:
            phase.wall_s += seconds
            phase.steps += steps
            phase.samples += samples


def timer(phase):
    """The engine's check, once per call: a _Timer when a profiler is active, else None."""
    if not _ACTIVE:
        return None
    return _Timer(phase, _ACTIVE)


def _ms(seconds):
    return seconds * 1e3


class Profile:
    """Per-layer forward/backward times of everything the engine ran while this profiler was active.

    Use as a context manager (`with cnnlite.profile() as prof:`); it may be re-entered and reused, accumulating
    across uses. `table()` formats it, `as_dict()` returns the numbers (milliseconds)."""

    def __init__(self):
        self._phases = {name: _Phase() for name, _ in _PHASES}
        self._depth = 0

    @property
    def active(self):
        return self._depth > 0

    def __enter__(self):
        if self._depth == 0:
            _ACTIVE.append(self)
        self._depth += 1
        return self

    def __exit__(self, exc_type, exc, tb):
        self._depth -= 1
        if self._depth == 0:
            _ACTIVE[:] = [p for p in _ACTIVE if p is not self]
        return False

    def reset(self):
        """Forget every measurement."""
        self._phases = {name: _Phase() for name, _ in _PHASES}

    # ----- results ----------------------------------------------------------------------------------------------
    def as_dict(self):
        """{phase: {'wall_ms', 'steps', 'samples', 'rows': [...]}} for each phase that ran ('train', 'evaluate',
        'predict'). Each row: name, type, output_shape, calls, forward_ms, forward_ms_per_call, backward_ms,
        backward_calls, backward_ms_per_call, total_ms, percent (of the phase's wall time). The last row, 'other', is the wall
        time not spent in a measured call, so the rows' total_ms add up to wall_ms."""
        result = {}
        for name, _ in _PHASES:
            phase = self._phases[name]
            if phase.steps == 0:
                continue
            wall_ms = _ms(phase.wall_s)
            rows = []
            measured_ms = 0.0
            for row in phase.rows.values():
                fwd, bwd = _ms(row.fwd_s), _ms(row.bwd_s)
                measured_ms += fwd + bwd
                rows.append({"name": row.name, "type": row.kind, "output_shape": row.output_shape,
                             "calls": row.fwd_calls,
                             "forward_ms": fwd, "forward_ms_per_call": fwd / row.fwd_calls if row.fwd_calls else 0.0,
                             "backward_ms": bwd, "backward_calls": row.bwd_calls,
                             "backward_ms_per_call": bwd / row.bwd_calls if row.bwd_calls else 0.0,
                             "total_ms": fwd + bwd})
            other = wall_ms - measured_ms
            rows.append({"name": "other", "type": "slicing, shuffling, metrics, callbacks", "output_shape": "",
                         "calls": phase.steps, "forward_ms": 0.0, "forward_ms_per_call": 0.0, "backward_ms": 0.0,
                         "backward_calls": 0, "backward_ms_per_call": 0.0, "total_ms": other})
            for r in rows:
                r["percent"] = 100.0 * r["total_ms"] / wall_ms if wall_ms > 0 else 0.0
            result[name] = {"wall_ms": wall_ms, "steps": phase.steps, "samples": phase.samples, "rows": rows}
        return result

    def table(self):
        """The measurements as text: one table per phase that ran, one row per layer plus loss, optimizer, other."""
        data = self.as_dict()
        if not data:
            return "cnnlite profile: nothing was run while profiling"
        blocks = []
        for name, title in _PHASES:
            if name in data:
                blocks.append(_format_phase(title, data[name]))
        return "\n\n".join(blocks)

    def __str__(self):
        return self.table()

    def __repr__(self):
        phases = {k: round(v["wall_ms"], 1) for k, v in self.as_dict().items()}
        return f"<cnnlite.Profile active={self.active} wall_ms={phases}>"


def _fmt(value, blank):
    return "-" if blank else f"{value:.2f}"


def _format_phase(title, phase):
    lines = []
    for r in phase["rows"]:
        no_fwd = r["name"] == "other"
        no_bwd = r["backward_calls"] == 0
        lines.append([f"{r['name']} ({r['type']})", r["output_shape"], str(r["calls"]),
                      _fmt(r["forward_ms"], no_fwd), _fmt(r["forward_ms_per_call"], no_fwd),
                      _fmt(r["backward_ms"], no_bwd), _fmt(r["backward_ms_per_call"], no_bwd),
                      f"{r['total_ms']:.2f}", f"{r['percent']:.1f}"])
    total = ["total (wall time of the steps)", "", str(phase["steps"]), "", "", "", "",
             f"{phase['wall_ms']:.2f}", "100.0"]
    widths = [max(len(row[i]) for row in lines + [list(_HEADERS), total]) for i in range(len(_HEADERS))]

    def render(cells):
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    rule = "-" * len(render(list(_HEADERS)))
    head = f"{title}: {phase['steps']} steps, {phase['samples']} samples, {phase['wall_ms']:.1f} ms wall"
    return "\n".join([head, rule, render(list(_HEADERS)), rule] + [render(l) for l in lines]
                     + [rule, render(total)])


def profile():
    """A new profiler; use it as a context manager: `with cnnlite.profile() as prof: model.fit(...)`."""
    return Profile()


def now():
    return time.perf_counter()
