"""The execution plan: how a model runs, decided once when it is built and compiled, visible to everyone.

A plan is one `Step` per layer, in model order. Each layer decides its own part (`Layer.plan_step`): the kernel
algorithm of each pass (forward, input gradient, weight gradient) and what its kernel fuses (bias and ReLU in the
store). The plan then decides what crosses layers, from the layer sequence alone:

- the ReLU backward of a Dense/Conv2D whose ReLU runs in its kernel is folded into a MaxPooling2D right after it
  (the pool's backward only routes gradient to cells whose output is > 0, which is that mask: the producer's
  backward kernel then skips it);
- a Conv2D whose ReLU runs in its Winograd kernel, followed by a 2x2, stride-2, unpadded MaxPooling2D over an output
  of even height and width, max-pools in its kernel's store (each 2x2 output tile is one window): its forward hands
  the pool step the pooled output and argmax (`PooledOutput`), the pool step hands them on and, backward, hands the
  conv step its gradient with them (`PooledGradient`), from which the conv's gradient kernels rebuild their input
  tile by tile. Same bits as unfused; off with `settings["pool_fusion"] = False`;
- a Conv2D with the direct forward pass (its ReLU in the kernel, or no activation) whose output a Flatten hands to a
  float32 Dense without ReLU in its kernel runs that Dense's product in its forward kernel, a few images at a time
  from the output it just wrote (`DenseInput`: the conv's output and the Dense's pre-activation, which the Flatten
  passes on). Where that conv is the first step and runs the direct weight gradient, and the Dense's input gradient
  is skinny (the CNN-8), the Dense also leaves its input gradient to the conv: its backward hands back its dz and
  kernel (`DenseGradient`), and the conv's weight-gradient kernel computes dy = dz @ kernel^T a few images at a time,
  so the full-size dy is never written. Same bits as unfused; off with `settings["conv_dense_fusion"] = False`;
- a final softmax is folded into the loss when the loss can fuse it (softmax + cross-entropy in one kernel);
- the first step computes no input gradient.

Training sums each weight gradient over the batch's reduction shards (`settings["gradient_shards"]`, from
cnnlite.config): the batch is cut into that many contiguous row ranges, each range's gradient is computed by the
weight-gradient kernel on its own rows, and the partials are added in shard order by one kernel
(`_kernels.partials_sum`). The bits then depend on the shard count alone - not on the thread count, nor on how many
processes hold the shards (cnnlite.distributed exchanges the partials and adds them with the same kernel).

Running a plan keeps everything per call in the call: `forward` returns the outputs and a `Tape` of what each step
needs for its backward, `backward` takes that tape. Nothing is stored on layers or in module globals between the
two, so several threads may run inference on one model at once, and two models train side by side with their fused
paths on. The `timer` handed to `forward`/`backward` is the profiler's (cnnlite.profiler); `NULL_TIMER` when off.
"""
import numpy as np

from cnnlite import _kernels


class Step:
    """One layer's part of a plan.

    algorithms: {"forward": name, "input_grad": name or None, "weight_grad": name or None}; None means the pass
        does not exist for this step (no weights, or no input gradient needed).
    relu_in_kernel: the layer's ReLU runs inside its kernel (forward store; backward mask by its output).
    mask_relu: the backward kernel masks the gradient by the output itself (False when the next step folds it).
    can_fold_relu: this step's backward can apply the previous step's ReLU backward (a max-pool can).
    fold_previous_relu: this step's backward also applies the previous step's ReLU backward.
    ends_in_softmax: the layer's activation is softmax (which the loss may take over).
    logits: the layer leaves out its softmax, which the loss applies (fused).
    can_pool_in_store: the layer's kernel can max-pool its output's 2x2 tiles in its store (a Winograd Conv2D with its
        ReLU in the kernel and an output of even height and width).
    takes_pool_store: this step is a max-pool that a previous can_pool_in_store step can run in its store (2x2,
        stride 2, no padding).
    pool_in_store / pooled_in_previous_store: build_plan's decision for such a pair (forward hands PooledOutput on,
        backward PooledGradient back).
    can_take_pool_gradient: the layer's input- and weight-gradient kernels can rebuild its output gradient from the
        next 2x2 max-pool's dy and argmax (a Conv2D with its ReLU in the kernel, both gradients Winograd, an output
        of even height and width), whatever its forward runs.
    pool_grad_in_kernels / pool_grad_in_previous_kernels: build_plan's decision for a conv that cannot pool in its
        store (a GEMM forward) and such a max-pool: the pool runs its own forward; backward it hands PooledGradient
        back instead of a full-size gradient.
    can_feed_dense: a Conv2D whose forward kernel can run the next Dense's product (direct, float32, the ReLU in the
        kernel or no activation).
    can_take_conv_product: a float32 Dense on 2-D input without a ReLU in its kernel, which can take its
        pre-activation from a DenseInput.
    can_take_dense_dy: a Conv2D whose weight-gradient kernel can compute its dy from a DenseGradient (direct, float32,
        the ReLU in the kernel or no activation).
    can_defer_dx: a Dense whose input gradient is the skinny dz @ kernel^T of a float32 layer without a ReLU in its
        kernel, which it can hand back as a DenseGradient.
    passes_through: a Flatten, which hands a DenseInput on and a DenseGradient back (reshaped / unchanged).
    feeds_dense / carries_dense_input / product_from_previous_conv, and dy_from_dense / carries_dense_gradient /
        dx_deferred: build_plan's decisions for such a conv, Flatten, Dense sequence, forward and backward.
    dense_after: the Dense layer whose product a feeds_dense conv runs (its kernel and bias).
    need_dx: the backward computes the input gradient (False for the first step).
    params: the layer's own precomputed call arguments (e.g. pads), fixed by the input shape.
    notes: explanations of choices that differ from a request (e.g. a forced algorithm that does not apply).
    precisions: {"forward", "input_grad", "weight_grad"} -> what that pass's products compute in: "float32", or
        "bfloat16" (operands rounded to bfloat16, products accumulated in float32: the layer's mixed_bfloat16 policy,
        where the pass has a bfloat16 kernel that pays; see Dense/Conv2D.plan_step); None where the pass does not
        exist. `precision` sums it up for the step: "bfloat16" when some pass runs bfloat16, "float32" when the step
        has passes, None for a step without products (pooling, dropout, reshapes).
    """

    __slots__ = ("layer", "index", "input_shape", "output_shape", "algorithms", "relu_in_kernel", "mask_relu",
                 "can_fold_relu", "fold_previous_relu", "ends_in_softmax", "logits", "need_dx", "params", "notes",
                 "epilogue", "precisions", "can_pool_in_store", "takes_pool_store", "pool_in_store",
                 "pooled_in_previous_store", "can_take_pool_gradient", "pool_grad_in_kernels",
                 "pool_grad_in_previous_kernels", "can_feed_dense", "can_take_conv_product", "can_take_dense_dy",
                 "can_defer_dx", "passes_through", "feeds_dense", "carries_dense_input", "product_from_previous_conv",
                 "dense_after", "dy_from_dense", "dx_deferred", "carries_dense_gradient")

    def __init__(self, layer, input_shape, output_shape, algorithms=None, relu_in_kernel=False, epilogue=None,
                 can_fold_relu=False, ends_in_softmax=False, params=None, notes=(), precisions=None):
        self.layer = layer
        self.index = 0
        self.input_shape = tuple(input_shape)
        self.output_shape = tuple(output_shape)
        self.algorithms = dict(algorithms or {"forward": None, "input_grad": None, "weight_grad": None})
        self.relu_in_kernel = relu_in_kernel
        self.mask_relu = relu_in_kernel
        self.epilogue = epilogue
        self.can_fold_relu = can_fold_relu
        self.fold_previous_relu = False
        self.ends_in_softmax = ends_in_softmax
        self.logits = False
        self.need_dx = True
        self.params = dict(params or {})
        self.notes = list(notes)
        self.precisions = {p: (precisions or {}).get(p, "float32" if a else None) for p, a in self.algorithms.items()}
        self.can_pool_in_store = False
        self.takes_pool_store = False
        self.pool_in_store = False
        self.pooled_in_previous_store = False
        self.can_take_pool_gradient = False
        self.pool_grad_in_kernels = False
        self.pool_grad_in_previous_kernels = False
        self.can_feed_dense = False
        self.can_take_conv_product = False
        self.can_take_dense_dy = False
        self.can_defer_dx = False
        self.passes_through = False
        self.feeds_dense = False
        self.carries_dense_input = False
        self.product_from_previous_conv = False
        self.dense_after = None
        self.dy_from_dense = False
        self.dx_deferred = False
        self.carries_dense_gradient = False

    @property
    def precision(self):
        live = [self.precisions.get(p) for p, a in self.algorithms.items()
                if a is not None and not (p == "input_grad" and not self.need_dx)]
        if any(v == "bfloat16" for v in live):
            return "bfloat16"
        return "float32" if live else None

    def pass_label(self, name):
        """The algorithm of pass `name` as the table shows it: e.g. 'winograd', 'gemm bf16', or None."""
        algo = self.algorithms.get(name)
        if algo is None:
            return None
        return f"{algo} bf16" if self.precisions.get(name) == "bfloat16" else algo

    @property
    def name(self):
        return self.layer.name

    @property
    def kind(self):
        return type(self.layer).__name__

    @property
    def fusions(self):
        """What this step fuses, in words (empty when nothing)."""
        out = []
        if self.epilogue:
            epilogue = self.epilogue + ("+max-pool" if self.pool_in_store else "")
            out.append(f"{epilogue} in the {self.algorithms.get('forward') or 'kernel'} store")
        if self.pool_in_store or self.pool_grad_in_kernels:
            out.append("relu and max-pool backward in the gradient kernels")
        elif self.relu_in_kernel and not self.mask_relu:
            out.append("relu backward folded into the next max-pool")
        elif self.relu_in_kernel:
            out.append("relu backward in the gradient kernels")
        if self.feeds_dense:
            out.append("runs the next dense's product from its output in cache")
        if self.dy_from_dense:
            out.append("dy from the next dense's dz in the weight-gradient kernel")
        if self.product_from_previous_conv:
            out.append("product run by the previous conv")
        if self.dx_deferred:
            out.append("input gradient computed in the previous conv's weight-gradient kernel")
        if self.carries_dense_input or self.carries_dense_gradient:
            out.append("passes the fused conv/dense values through")
        if self.pooled_in_previous_store:
            out.append("fused into the previous conv")
        elif self.pool_grad_in_previous_kernels:
            out.append("backward in the previous conv's gradient kernels")
        elif self.fold_previous_relu:
            out.append("applies the previous layer's relu backward")
        if self.logits:
            out.append("softmax folded into the loss")
        return out

    def copy(self):
        twin = Step.__new__(Step)
        for name in Step.__slots__:
            value = getattr(self, name)
            setattr(twin, name, dict(value) if isinstance(value, dict) else list(value)
                    if isinstance(value, list) else value)
        return twin

    def as_dict(self):
        return {"index": self.index, "name": self.name, "type": self.kind, "input_shape": self.input_shape,
                "output_shape": self.output_shape, "algorithms": dict(self.algorithms), "fusions": self.fusions,
                "need_dx": self.need_dx, "notes": list(self.notes), "precision": self.precision,
                "precisions": dict(self.precisions)}

    def summary(self):
        """One short line: the algorithms of the passes that run, then the fusions."""
        passes = [self.pass_label(p) or "-" for p in ("forward", "input_grad", "weight_grad")]
        if not self.need_dx:
            passes[1] = "-"
        text = "/".join(passes) if any(p != "-" for p in passes) else "-"
        return "; ".join([text] + self.fusions + self.notes)

    def __repr__(self):
        return f"<Step {self.index} {self.name} ({self.kind}): {self.summary()}>"


# The fewest rows a reduction shard gets: below it, a weight-gradient kernel call costs more in its fixed work (e.g.
# the Winograd weight transform) than it computes. A batch of n rows has min(gradient_shards, max(1, n // 64))
# shards, so the count depends on the batch size and the setting alone.
MIN_SHARD_ROWS = 64


def shard_count(batch_size, count):
    """How many reduction shards a batch of `batch_size` rows has under the setting gradient_shards=count."""
    return max(1, min(int(count), int(batch_size) // MIN_SHARD_ROWS))


def shard_bounds(batch_size, count):
    """The reduction shards of a batch of `batch_size` rows: with k = shard_count(batch_size, count), shard s is
    rows [s*n//k, (s+1)*n//k)."""
    k = shard_count(batch_size, count)
    return [(s * batch_size // k, (s + 1) * batch_size // k) for s in range(k)]


class BatchPart:
    """Which rows of a training batch this process runs and how they divide into the batch's reduction shards.

    offset: the batch row of local row 0 (0 in one process); shards: (start, stop) local row ranges, one per shard
    this process holds, in batch order. Dropout draws its masks by batch row (offset), the weighted layers return one
    gradient partial per shard.
    """
    __slots__ = ("offset", "shards")

    def __init__(self, offset, shards):
        self.offset = int(offset)
        self.shards = tuple(shards)

    @classmethod
    def whole(cls, batch_size, count):
        return cls(0, shard_bounds(batch_size, count))

    def __repr__(self):
        return f"<BatchPart offset={self.offset} shards={list(self.shards)}>"


def shard_partials(part, n, weights, compute, rows_per_sample=1):
    """The per-shard weight-gradient partials of a step: `compute(bounds)` with the shards' row boundaries
    [0, b1, ..., n * rows_per_sample] (one shard of all n samples when part is None; a Dense on (n, t, features)
    inputs has t rows per sample) returns arrays (shards, *weight.shape) in weight order; a part holding no rows
    gets empty (0, *shape) arrays."""
    if part is not None and not part.shards:
        return [np.empty((0,) + tuple(w.shape), np.float32) for w in weights]
    bounds = [0, n] if part is None else [a for a, _ in part.shards] + [part.shards[-1][1]]
    return compute([b * rows_per_sample for b in bounds])


def sum_partials(step_partials):
    """The weight gradients from every step's per-shard partials, added in shard order (one process)."""
    return [[p[0] if len(p) == 1 else _kernels.partials_sum(p) for p in partials] for partials in step_partials]


class PooledOutput:
    """What a step with the max-pool in its store hands the pool step after it: the pooled output y and its int32
    argmax (n, oh / 2, ow / 2, c), argmax indexing the convolution's output plane."""
    __slots__ = ("y", "argmax")

    def __init__(self, y, argmax):
        self.y = y
        self.argmax = argmax


class PooledGradient:
    """What that pool step's backward hands the step before it: its incoming gradient dy, the argmax and the pooled
    output (the ReLU's gate), all (n, oh / 2, ow / 2, c)."""
    __slots__ = ("dy", "argmax", "gate")

    def __init__(self, dy, argmax, gate):
        self.dy = dy
        self.argmax = argmax
        self.gate = gate


class DenseInput:
    """What a Conv2D step that runs the next Dense's product hands on: its output y (n, ...) and that Dense's
    pre-activation z (n, units) = flat(y) @ kernel + bias. The Flatten between them reshapes y."""
    __slots__ = ("y", "z")

    def __init__(self, y, z):
        self.y = y
        self.z = z


class DenseGradient:
    """What a Dense step whose input gradient is deferred hands back instead of it: dz (n, units), the gradient at its
    pre-activation, and its kernel (in, units). The input gradient is dz @ kernel^T, which the Conv2D step before the
    Flatten computes a few images at a time inside its weight-gradient kernel."""
    __slots__ = ("dz", "kernel")

    def __init__(self, dz, kernel):
        self.dz = dz
        self.kernel = kernel


class Tape:
    """What one training forward pass kept for its backward: one cache per step, in step order, and the BatchPart
    the pass ran."""
    __slots__ = ("caches", "part")

    def __init__(self, n, part=None):
        self.caches = [None] * n
        self.part = part


class _NullTimer:
    """The timer of an unprofiled call: every method does nothing."""
    __slots__ = ()
    active = False

    @staticmethod
    def clock():
        return 0.0

    def step(self, step, backward, t0):
        pass

    def op(self, name, kind, t0):
        pass

    def wall(self, t0, steps, samples):
        return 0.0


NULL_TIMER = _NullTimer()


class ExecutionPlan:
    """The steps of a model, the loss they feed and how the two meet. Built by `build_plan`."""

    def __init__(self, model_name, steps, loss_name=None, loss_fused=False, settings=None):
        self.model_name = model_name
        self.steps = steps
        self.loss_name = loss_name
        self.loss_fused = loss_fused
        self.settings = dict(settings or {})
        # predict and model(x) want the model's own output, softmax included: the same steps, the last one
        # keeping its activation.
        self._output_steps = steps
        if loss_fused:
            last = steps[-1].copy()
            last.logits = False
            self._output_steps = steps[:-1] + [last]

    def prefix(self, stop):
        """The plan of steps [0, stop) alone, for inference (e.g. a layer's feature maps): a last step that max-pools
        in its store runs unfused, so it returns its own output."""
        steps = list(self.steps[:stop])
        if steps and steps[-1].pool_in_store:
            steps[-1] = steps[-1].copy()
            steps[-1].pool_in_store = False
        for i, step in enumerate(steps):  # a conv -> Flatten -> Dense fusion cut by the end of the prefix
            if (step.feeds_dense or step.carries_dense_input) and i + (2 if step.feeds_dense else 1) >= len(steps):
                steps[i] = step.copy()
                steps[i].feeds_dense = steps[i].carries_dense_input = False
        return ExecutionPlan(self.model_name, steps, settings=self.settings)

    # ----- running ----------------------------------------------------------------------------------------------
    @property
    def gradient_shards(self):
        return int(self.settings.get("gradient_shards", 1))

    def forward(self, x, training, timer=NULL_TIMER, to_loss=False, part=None):
        """The model's output for batch `x` (its pre-softmax values when `to_loss` and the loss takes over the
        softmax), and the Tape its backward needs (None when not training). `part`: where x's rows sit in the
        batch and its reduction shards (default: x is the whole batch, cut into `gradient_shards` shards)."""
        tape = None
        if training:
            part = part if part is not None else BatchPart.whole(len(x), self.gradient_shards)
            tape = Tape(len(self.steps), part)
        h = x
        clock = timer.clock
        for step in (self.steps if to_loss else self._output_steps):
            t0 = clock()
            h, cache = step.layer.forward(h, step, training, part)
            timer.step(step, False, t0)
            if tape is not None:
                tape.caches[step.index] = cache
        return h, tape

    def backward(self, dout, tape, timer=NULL_TIMER, combine=sum_partials):
        """(d(input) or None, gradients of every step in step order, each a list in its layer's weights order).
        d(input) is computed only by a plan built with input_grad=True. The layers give one partial per shard of
        the tape's BatchPart; `combine` turns them into the gradients (added in order here; across processes by
        cnnlite.distributed)."""
        partials = [None] * len(self.steps)
        d = dout
        clock = timer.clock
        for step in reversed(self.steps):
            t0 = clock()
            d, partials[step.index] = step.layer.backward(d, tape.caches[step.index], step, tape.part)
            timer.step(step, True, t0)
            tape.caches[step.index] = None  # free activations as soon as they are used
        t0 = clock()
        grads = combine(partials)
        timer.op("gradients", f"sum of {len(tape.part.shards)} shard partials", t0)
        return d, grads

    # ----- memory ---------------------------------------------------------------------------------------------
    def bytes_per_batch(self, batch_size, training):
        """Upper estimate of the bytes one batch of `batch_size` needs while it runs (issue 13: a batch that cannot
        fit is refused before anything is allocated), from the step shapes alone, float32 throughout:

        - inference: the largest step in flight (its input, its output, a second output when the activation runs
          outside the kernel, and a max-pool's int32 argmax);
        - training: the batch and its targets, every step's kept output (the Tape: a max-pool also keeps its
          argmax, an activation outside the kernel its pre-activation while it runs), then the largest backward
          step in flight (incoming gradient, pre-activation gradient, input gradient) and the weight gradients
          (one partial per reduction shard, and their sum);
        - plus the kernels' workspaces: per thread, the im2col/col2im chunks and per-chunk partials of a
          convolution (bounded, not proportional to the batch) and 64 MiB of GEMM packing, counted generously.
        """
        import math
        n = int(batch_size)
        f32 = 4

        def size(shape):
            return math.prod(int(d) for d in shape[1:] if d is not None)

        def activated_outside(step):
            act = getattr(step.layer, "activation", None)
            return act is not None and not step.relu_in_kernel and getattr(act, "__name__", "") != "linear"

        def argmax_of(step):
            return size(step.output_shape) if "MaxPooling" in step.kind else 0

        steps = self.steps if training else self._output_steps
        if not steps:
            return 0
        workspace = 0
        for step in steps:
            weights = getattr(step.layer, "kernel", None)
            if weights is None or len(step.input_shape) != 4:
                continue
            depth = int(weights.size) // max(1, int(weights.shape[-1]))
            cout = int(weights.shape[-1])
            pixels = size(step.output_shape) // max(1, cout)
            rows = max(6144, pixels)  # a chunk holds up to 6144 im2col rows, and at least one whole image
            chunk = rows * (2 * depth + cout) * f32  # col, dcol, dz
            partials = max(16 * (depth * cout + cout), 1 << 20) * f32
            workspace = max(workspace, chunk + partials)
        workspace = max(1, _kernels.get_num_threads()) * (workspace + (64 << 20))

        if not training:
            in_flight = max(size(s.input_shape) + size(s.output_shape) * (2 if activated_outside(s) else 1)
                            + argmax_of(s) for s in steps)
            return n * in_flight * f32 + workspace
        kept = size(steps[0].input_shape) + size(steps[-1].output_shape)  # the batch and its targets
        for s in steps:
            kept += size(s.output_shape) + argmax_of(s)
        forward_peak = max(size(s.output_shape) * (2 if activated_outside(s) else 1) for s in steps)
        backward_peak = max(2 * size(s.output_shape) + size(s.input_shape) for s in steps)
        weights = sum(int(w.size) for s in steps for w in getattr(s.layer, "weights", []) or []
                      if hasattr(w, "size"))
        # the weight gradients: one partial per reduction shard, and their sum
        partials = shard_count(n, self.gradient_shards) + 1
        return n * (kept + max(forward_peak, backward_peak)) * f32 + partials * weights * f32 + workspace

    # ----- looking at it ----------------------------------------------------------------------------------------
    def as_dict(self):
        return {"model": self.model_name, "loss": self.loss_name, "loss_fused_with_softmax": self.loss_fused,
                "settings": dict(self.settings), "steps": [s.as_dict() for s in self.steps]}

    def table(self):
        headers = ("#", "Step (type)", "Output shape", "Precision", "Forward", "Input grad", "Weight grad",
                   "Fusions / notes")
        rows = []
        for s in self.steps:
            a = s.algorithms
            rows.append((str(s.index), f"{s.name} ({s.kind})", str(s.output_shape), s.precision or "-",
                         s.pass_label("forward") or "-",
                         (s.pass_label("input_grad") or "-") if s.need_dx else "- (not needed)",
                         s.pass_label("weight_grad") or "-",
                         "; ".join(s.fusions + s.notes) or "-"))
        if self.loss_name is not None:
            rows.append(("", "loss", "", "float32", "fused softmax + cross-entropy" if self.loss_fused
                         else self.loss_name, "", "", ""))
        widths = [max(len(r[i]) for r in rows + [headers]) for i in range(len(headers))]

        def render(cells):
            return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

        rule = "-" * max(len(render(headers)), 40)
        settings = ", ".join(f"{k}={v}" for k, v in self.settings.items())
        head = f'Execution plan of "{self.model_name}"' + (f" ({settings})" if settings else "")
        return "\n".join([head, rule, render(headers), rule] + [render(r) for r in rows] + [rule])

    def __str__(self):
        return self.table()

    def __repr__(self):
        return f"<ExecutionPlan {self.model_name!r}: {len(self.steps)} steps>"


def build_plan(model_name, layers, input_shape, loss=None, settings=None, input_grad=False):
    """The plan for `layers` (built, in order) fed batches of `input_shape`, ending in `loss` (or None).
    `input_grad=True` makes the first step compute the gradient of its input too (a model never needs it)."""
    settings = dict(settings or {})
    steps = []
    shape = tuple(input_shape)
    for i, layer in enumerate(layers):
        step = layer.plan_step(shape, settings)
        step.index = i
        steps.append(step)
        shape = step.output_shape
    if steps and not input_grad:
        steps[0].need_dx = False
        if steps[0].algorithms.get("input_grad") is not None:
            steps[0].algorithms["input_grad"] = None
    for before, after in zip(steps, steps[1:]):
        if before.relu_in_kernel and after.can_fold_relu:
            before.mask_relu = False
            after.fold_previous_relu = True
    if settings.get("pool_fusion", True):
        for before, after in zip(steps, steps[1:]):
            if not (after.takes_pool_store and before.relu_in_kernel and after.fold_previous_relu):
                continue
            if before.can_pool_in_store:
                before.pool_in_store = True
                after.pooled_in_previous_store = True
            elif before.can_take_pool_gradient:
                before.pool_grad_in_kernels = True
                after.pool_grad_in_previous_kernels = True
    if settings.get("conv_dense_fusion", True):
        for conv, flat, dense in zip(steps, steps[1:], steps[2:]):
            if not flat.passes_through:
                continue
            if conv.can_feed_dense and dense.can_take_conv_product:
                conv.feeds_dense = flat.carries_dense_input = dense.product_from_previous_conv = True
                conv.dense_after = dense.layer
            if conv.can_take_dense_dy and not conv.need_dx and dense.can_defer_dx:
                conv.dy_from_dense = flat.carries_dense_gradient = dense.dx_deferred = True
    loss_fused = False
    if steps and steps[-1].ends_in_softmax and loss is not None and loss.fusable_with_softmax \
            and not loss.from_logits:
        steps[-1].logits = True
        loss_fused = True
    loss_name = None if loss is None else loss.name
    return ExecutionPlan(model_name, steps, loss_name, loss_fused, settings)
