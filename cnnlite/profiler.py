"""Where training time goes, per layer: `with cnnlite.profile() as prof: model.fit(...)`, then `print(prof)`.

While a profiler is active, fit / evaluate / predict (and the *_on_batch calls) hand the model's execution plan a
timer that reads time.perf_counter() around each step's forward and backward call, the loss kernel and the
optimizer update; the wall time of the batch loop is measured too, and whatever it holds beyond those calls (batch
slicing, shuffling, metrics, callbacks, the progress bar) is reported as 'other', so every table's rows add up to
its wall time. Each layer's row also names what the plan runs for it (algorithms of the forward, input-gradient and
weight-gradient passes, and the fusions). A call decides once, when it starts, which timer it uses: with no
profiler active it is the plan's NULL_TIMER, whose methods do nothing, on the same code path.

Profilers nest: every profiler active when a call starts records it. Which profilers are active is a property of
the running context (a contextvars.ContextVar), so a profiler entered in one thread records only that thread's
calls; two threads may each profile their own training.
"""
import contextvars
import time

from cnnlite.engine.plan import NULL_TIMER

_ACTIVE = contextvars.ContextVar("cnnlite_active_profiles", default=())  # outermost first

_PHASES = (("train", "Training steps (fit / train_on_batch)"),
           ("evaluate", "Evaluation (evaluate / test_on_batch / fit validation)"),
           ("predict", "Prediction (predict / predict_on_batch / model(x))"))
_HEADERS = ("Row", "Output shape", "Calls", "Fwd ms", "Fwd ms/call", "Bwd ms", "Bwd ms/call", "Total ms", "% wall",
            "Plan (fwd/dx/dW algorithms; fusions)")


class _Row:
    __slots__ = ("name", "kind", "output_shape", "plan", "fwd_s", "fwd_calls", "bwd_s", "bwd_calls")

    def __init__(self, name, kind, output_shape="", plan=""):
        self.name, self.kind, self.output_shape, self.plan = name, kind, output_shape, plan
        self.fwd_s = self.bwd_s = 0.0
        self.fwd_calls = self.bwd_calls = 0


class _Phase:
    """Everything one profiler measured for one phase (train, evaluate or predict)."""

    def __init__(self):
        self.rows = {}       # key -> _Row, in first-seen order (layers in model order)
        self.wall_s = 0.0
        self.steps = 0
        self.samples = 0

    def row(self, key, name, kind, output_shape="", plan=""):
        row = self.rows.get(key)
        if row is None:
            row = self.rows[key] = _Row(name, kind, output_shape, plan)
        return row


class _Timer:
    """Handed to the plan for one profiled call: adds measurements to every profiler active when it began.
    Same interface as the plan's NULL_TIMER: clock(), step(), op(), wall(), each taking a clock() reading."""
    __slots__ = ("_phases",)
    active = True
    clock = staticmethod(time.perf_counter)

    def __init__(self, phase, profiles):
        self._phases = [p._phases[phase] for p in profiles]

    def step(self, step, backward, t0):
        """Time since `t0` spent in `step`'s forward (or backward) call."""
        seconds = time.perf_counter() - t0
        key = ("layer", id(step.layer))
        for phase in self._phases:
            row = phase.row(key, step.name, step.kind, str(step.output_shape), step.summary())
            if backward:
                row.bwd_s += seconds
                row.bwd_calls += 1
            else:
                row.fwd_s += seconds
                row.fwd_calls += 1

    def op(self, name, kind, t0):
        """A non-layer row (the loss, the optimizer update); its time counts as forward time."""
        seconds = time.perf_counter() - t0
        for phase in self._phases:
            row = phase.row(("op", name), name, kind)
            row.fwd_s += seconds
            row.fwd_calls += 1

    def wall(self, t0, steps, samples):
        """Wall time since `t0` of `steps` batches holding `samples` samples; returns the time now."""
        now = time.perf_counter()
        for phase in self._phases:
            phase.wall_s += now - t0
            phase.steps += steps
            phase.samples += samples
        return now


def timer(phase):
    """The engine's check, once per call: a recording timer when a profiler is active in this context, else the
    plan's NULL_TIMER."""
    profiles = _ACTIVE.get()
    if not profiles:
        return NULL_TIMER
    return _Timer(phase, profiles)


def active_profiles():
    """The profilers recording in this context (thread), outermost first."""
    return _ACTIVE.get()


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
            _ACTIVE.set(_ACTIVE.get() + (self,))
        self._depth += 1
        return self

    def __exit__(self, exc_type, exc, tb):
        self._depth -= 1
        if self._depth == 0:
            _ACTIVE.set(tuple(p for p in _ACTIVE.get() if p is not self))
        return False

    def reset(self):
        """Forget every measurement."""
        self._phases = {name: _Phase() for name, _ in _PHASES}

    # ----- results ----------------------------------------------------------------------------------------------
    def as_dict(self):
        """{phase: {'wall_ms', 'steps', 'samples', 'rows': [...]}} for each phase that ran ('train', 'evaluate',
        'predict'). Each row: name, type, output_shape, plan (what the execution plan runs for it), calls, forward_ms, forward_ms_per_call, backward_ms,
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
                             "plan": row.plan, "calls": row.fwd_calls,
                             "forward_ms": fwd, "forward_ms_per_call": fwd / row.fwd_calls if row.fwd_calls else 0.0,
                             "backward_ms": bwd, "backward_calls": row.bwd_calls,
                             "backward_ms_per_call": bwd / row.bwd_calls if row.bwd_calls else 0.0,
                             "total_ms": fwd + bwd})
            other = wall_ms - measured_ms
            rows.append({"name": "other", "type": "slicing, shuffling, metrics, callbacks", "output_shape": "",
                         "plan": "", "calls": phase.steps, "forward_ms": 0.0, "forward_ms_per_call": 0.0, "backward_ms": 0.0,
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
                      f"{r['total_ms']:.2f}", f"{r['percent']:.1f}", r["plan"]])
    total = ["total (wall time of the steps)", "", str(phase["steps"]), "", "", "", "",
             f"{phase['wall_ms']:.2f}", "100.0", ""]
    widths = [max(len(row[i]) for row in lines + [list(_HEADERS), total]) for i in range(len(_HEADERS))]

    def render(cells):
        return "  ".join(c.ljust(w) if i < 2 or i == 9 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    rule = "-" * len(render(list(_HEADERS)))
    head = f"{title}: {phase['steps']} steps, {phase['samples']} samples, {phase['wall_ms']:.1f} ms wall"
    return "\n".join([head, rule, render(list(_HEADERS)), rule] + [render(l) for l in lines]
                     + [rule, render(total)])


def profile():
    """A new profiler; use it as a context manager: `with cnnlite.profile() as prof: model.fit(...)`."""
    return Profile()


def now():
    return time.perf_counter()
