"""The Keras training API (compile, fit, evaluate, predict, *_on_batch) for models that run a list of layers.

Every call runs the model's execution plan (cnnlite/engine/plan.py), built once for its layers, loss and settings:
`_train_step` and `_test_step` (and the plan's own forward for predict) are the only step functions, profiled or
not: the profiler is a timer object handed to the plan, and `NULL_TIMER` does nothing.

A subclass provides `layers` (the layers to run, in order), `built`, `_build_from(input_shape)`,
`_input_spec()` (the expected batch input shape) and `output_shape`.
"""
import contextlib
import threading

import numpy as np

from cnnlite import _memory, config, distributed, losses, metrics as metrics_mod, optimizers, profiler
from cnnlite.engine import data_adapter as da
from cnnlite.engine.plan import build_plan
from cnnlite.callbacks import CallbackList
from cnnlite.engine.progbar import Progbar
from cnnlite._validation import check_nonneg_int, generator_from_state

_ACC_ALIAS = {"acc": "accuracy", "accuracy": "acc"}


def _metric_name(identifier):
    if isinstance(identifier, str):
        return identifier
    return metrics_mod.resolve(identifier, None, None).name


class Model:
    def _init_training_state(self):
        self.optimizer = None
        self.loss = None
        self.compiled_loss_name = None
        self.compiled_metrics = []
        self.stop_training = False
        self.history = None
        self._loss_obj = None
        self._metric_specs = []
        self._metric_objs = None
        self._is_compiled = False
        self._seed = None
        self._init_rng = None
        self._shuffle_rng = None
        self._batch_tracker = None
        self._plan = None
        self._plan_key = None
        self._trainer = None              # the thread training this model now (fit / train_on_batch), else None
        self._trainer_lock = threading.Lock()
        self.last_profile = None  # the cnnlite.Profile of the last fit(..., profile=True)

    # ----- randomness -------------------------------------------------------------------------------------------
    def _ensure_rngs(self):
        """Draw the model's seed from NumPy's global RNG once; derive the initialiser and shuffling generators."""
        if self._seed is None:
            self._seed = int(np.random.randint(0, 2**31 - 1))
            init_seq, shuffle_seq = np.random.SeedSequence(self._seed).spawn(2)
            self._init_rng = np.random.default_rng(init_seq)
            self._shuffle_rng = np.random.default_rng(shuffle_seq)

    def get_rng_state(self):
        """The random state that decides how this model builds and trains from here on, as a JSON-able dict:
        `{"seed": int, "init_rng": dict, "shuffle_rng": dict}` (the seed drawn once from NumPy's global generator,
        and the NumPy bit-generator states of the weight-initialiser and the shuffling generators), or None while
        the model has drawn no seed yet. Layers keep their own state (`Layer.get_rng_state`)."""
        if self._seed is None:
            return None
        return {"seed": int(self._seed), "init_rng": self._init_rng.bit_generator.state,
                "shuffle_rng": self._shuffle_rng.bit_generator.state}

    def set_rng_state(self, state):
        """Put back a `get_rng_state()` result: afterwards the model initialises and shuffles exactly as the one
        it came from would have. None forgets the seed (a new one is drawn when the model next needs one).
        Everything is checked before anything changes: ValueError for a seed that is not a non-negative integer
        or a generator state NumPy's default bit generator does not accept, TypeError for a non-dict."""
        if state is None:
            self._seed, self._init_rng, self._shuffle_rng = None, None, None
            return
        if not isinstance(state, dict):
            raise TypeError(f"set_rng_state: `state` must be a dict from get_rng_state() or None, "
                            f"received {type(state).__name__}")
        missing = [key for key in ("seed", "init_rng", "shuffle_rng") if key not in state]
        if missing:
            raise ValueError(f"set_rng_state: `state` lacks {missing} (expected the keys 'seed', 'init_rng' and "
                             f"'shuffle_rng'), received {state!r}")
        seed = check_nonneg_int(state["seed"], "seed", "set_rng_state")
        init_rng = generator_from_state(state["init_rng"], "init_rng", "set_rng_state")
        shuffle_rng = generator_from_state(state["shuffle_rng"], "shuffle_rng", "set_rng_state")
        self._seed, self._init_rng, self._shuffle_rng = seed, init_rng, shuffle_rng

    # ----- compile ----------------------------------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None, weighted_metrics=None,
                run_eagerly=None, steps_per_execution=None, jit_compile=None, **kwargs):
        """Configure training: an optimizer ('adam', 'sgd', 'rmsprop' or an instance), a loss
        ('categorical_crossentropy', 'sparse_categorical_crossentropy', 'mse' or an instance) and metrics
        (e.g. ['accuracy'] or ['acc'])."""
        if kwargs:
            raise TypeError(f"compile: unexpected keyword arguments {sorted(kwargs)}")
        for key, value in (("loss_weights", loss_weights), ("weighted_metrics", weighted_metrics)):
            if value is not None:
                raise NotImplementedError(f"compile: `{key}` is not supported by cnnlite, received {value!r}")
        if steps_per_execution not in (None, 1):
            raise NotImplementedError(f"compile: only steps_per_execution=1 is supported, "
                                      f"received {steps_per_execution!r}")
        opt = optimizers.get(optimizer)
        loss_obj = losses.get(loss) if loss is not None else None
        if metrics is None:
            metrics = []
        if isinstance(metrics, (str, dict)) or not isinstance(metrics, (list, tuple)):
            raise TypeError(f"compile: `metrics` must be a list (e.g. ['accuracy']), received {metrics!r}")
        for m in metrics:
            metrics_mod.check_identifier(m)
        self.optimizer = opt
        self.loss = loss
        self._loss_obj = loss_obj
        if loss is None:
            self.compiled_loss_name = None
        elif isinstance(loss, str):
            self.compiled_loss_name = loss
        else:
            self.compiled_loss_name = loss_obj.name
        self.compiled_loss_config = None if loss_obj is None else losses.serialize(loss_obj)
        self._metric_specs = list(metrics)
        self.compiled_metrics = [_metric_name(m) for m in metrics]
        self._metric_objs = None
        self._batch_tracker = None
        self._is_compiled = True

    def get_compile_config(self):
        """What `compile` was given, as JSON: `{"optimizer": {"class_name", "config"}, "loss": name or loss config,
        "metrics": [names]}`; None when the model is not compiled. ValueError (saying which) when the loss or a
        metric cannot be re-created from such a config."""
        if self.optimizer is None:
            return None
        loss = self.loss
        if loss is not None and not isinstance(loss, str):
            loss = self.compiled_loss_config
        metrics = list(self.compiled_metrics or [])
        problem = None
        if loss is not None and not isinstance(loss, (str, dict)):
            problem = f"its loss {self.loss!r} cannot be written to a file"
        for name in metrics:
            try:
                metrics_mod.check_identifier(name)
            except ValueError:
                problem = f"its metric {name!r} cannot be re-created from its name"
        if problem is not None:
            raise ValueError(problem)
        return {"optimizer": optimizers.serialize(self.optimizer), "loss": loss, "metrics": metrics}

    def compile_from_config(self, config):
        """Compile from a `get_compile_config()` result (a new optimizer from its config, without state)."""
        if not isinstance(config, dict):
            raise TypeError(f"compile_from_config: `config` must be a dict from get_compile_config(), "
                            f"received {type(config).__name__}")
        self.compile(optimizer=optimizers.deserialize(config["optimizer"]), loss=config["loss"],
                     metrics=config.get("metrics") or None)

    @property
    def metrics_names(self):
        return ["loss"] + list(self.compiled_metrics)

    def _require_compiled(self, what):
        if not self._is_compiled or self.optimizer is None:
            raise RuntimeError(f"You must compile your model before {what}: call "
                               f"`model.compile(optimizer, loss, metrics)` first")
        if self._loss_obj is None:
            raise ValueError(f"No loss to compute: the model was compiled with loss=None; pass e.g. "
                             f"loss='categorical_crossentropy' to compile() before {what}")

    # ----- the execution plan ------------------------------------------------------------------------------------
    @property
    def plan(self):
        """The model's ExecutionPlan (cnnlite/engine/plan.py): per layer, the kernel algorithm of each pass and the
        fusions, decided from the layers, the compiled loss and cnnlite.config; `print(model.plan)` shows it."""
        self._require_built("its execution plan")
        return self._current_plan()

    def _current_plan(self):
        settings = config.plan_settings()
        key = (tuple(id(layer) for layer in self.layers), id(self._loss_obj), tuple(sorted(settings.items())),
               tuple(self._input_spec()[1:]))
        if self._plan is None or self._plan_key != key:
            self._plan = build_plan(self.name, self.layers, self._input_spec(), self._loss_obj, settings)
            self._plan_key = key
        return self._plan

    @contextlib.contextmanager
    def _training_guard(self, what):
        """Training changes weights and optimizer state in place: one thread at a time may train a model, and no
        other thread may evaluate or predict with it meanwhile (its own callbacks may)."""
        me = threading.get_ident()
        with self._trainer_lock:
            if self._trainer is not None and self._trainer != me:
                raise RuntimeError(f"Cannot start {what} on model {self.name!r}: it is being trained in another "
                                   f"thread. A model trains in one thread at a time; use one model per thread")
            outer = self._trainer is None
            self._trainer = me
        try:
            yield
        finally:
            if outer:
                with self._trainer_lock:
                    self._trainer = None

    def _check_not_training_elsewhere(self, what):
        trainer = self._trainer
        if trainer is not None and trainer != threading.get_ident():
            raise RuntimeError(f"Cannot run {what} on model {self.name!r} while another thread trains it (the "
                               f"weights change under it); wait for fit to end or use a copy of the model")

    # ----- the step functions ------------------------------------------------------------------------------------
    def _train_step(self, plan, xb, yb, timer):
        """Forward, loss, backward and update on one batch; returns (batch loss, predictions for metrics).
        With several processes (cnnlite.distributed) this rank runs its run of the batch's reduction shards; the
        outputs are gathered so the loss and metrics see the whole batch, and the gradient partials are combined
        across the ranks in shard order."""
        world = distributed.world()
        if world is None:
            out, tape = plan.forward(xb, True, timer, to_loss=True)
            loss, dout, pred = self._loss_step(plan, out, yb, True, timer)
            _, grads = plan.backward(dout, tape, timer)
        else:
            part, start, stop = world.training_part(len(xb), plan.gradient_shards)
            rows, shard_counts = world.training_layout(len(xb), plan.gradient_shards)
            out, tape = plan.forward(xb[start:stop], True, timer, to_loss=True, part=part)
            t0 = timer.clock()
            out = world.gather_rows(out, rows, out.shape[1:])
            timer.op("distributed", "gather outputs", t0)
            loss, dout, pred = self._loss_step(plan, out, yb, True, timer)
            _, grads = plan.backward(np.ascontiguousarray(dout[start:stop]), tape, timer,
                                     combine=lambda partials: world.combine(partials, shard_counts))
        t0 = timer.clock()
        self._apply_gradients(plan, grads)
        timer.op("optimizer", f"{type(self.optimizer).__name__} update", t0)
        return loss, pred

    def _test_step(self, plan, xb, yb, timer):
        out = self._inference(plan, xb, timer, to_loss=True)
        loss, _, pred = self._loss_step(plan, out, yb, False, timer)
        return loss, pred

    @staticmethod
    def _inference(plan, xb, timer, to_loss=False):
        """The plan's inference output for batch xb; split across the ranks and gathered in batch order when
        several processes run (every rank gets the whole batch's output)."""
        world = distributed.world()
        if world is None:
            return plan.forward(xb, False, timer, to_loss=to_loss)[0]
        rows = world.inference_rows(len(xb))
        start, stop = rows[world.rank]
        out = plan.forward(xb[start:stop], False, timer, to_loss=to_loss)[0]
        t0 = timer.clock()
        out = world.gather_rows(out, rows, out.shape[1:])
        timer.op("distributed", "gather outputs", t0)
        return out

    def _loss_step(self, plan, out, yb, need_grad, timer):
        """(batch loss, d(out) or None, predictions) of the plan's output: softmax + cross-entropy in one kernel
        when the plan folded the softmax into the loss."""
        t0 = timer.clock()
        result = self._loss_obj.model_step(out, yb, plan.loss_fused or self._loss_obj.from_logits,
                                           need_grad=need_grad)
        timer.op("loss", "fused softmax+xent" if plan.loss_fused else self._loss_obj.name, t0)
        return result

    def _apply_gradients(self, plan, grads):
        weights, flat = [], []
        for step, step_grads in zip(plan.steps, grads):
            layer = step.layer
            if layer.trainable:
                flat.extend(step_grads)
                weights.extend(layer.weights)
        if weights:
            self.optimizer.apply(flat, weights)

    # ----- data -------------------------------------------------------------------------------------------------
    def _prepare_x(self, x, name="x"):
        x = da.to_float32(x, name)
        if not self.layers:
            raise ValueError("The model has no layers: add layers before training or predicting")
        if not self.built:
            self._build_from((None,) + x.shape[1:])
        da.check_input(self.name, self._input_spec(), x, name)
        return x

    def _prepare_xy(self, x, y, x_name="x", y_name="y"):
        x = self._prepare_x(x, x_name)
        if y is None:
            raise ValueError(f"`{y_name}` is required (the targets for `{x_name}`), received None")
        y_arr = y if isinstance(y, np.ndarray) else np.asarray(y)
        da.same_length(x, y_arr, x_name, y_name)
        return x, da.prepare_targets(self._loss_obj, y_arr, self.output_shape, y_name)

    def _resolved_metrics(self):
        if self._metric_objs is None:
            width = self.output_shape[-1]
            self._metric_objs = [metrics_mod.resolve(m, self._loss_obj, width) for m in self._metric_specs]
        return self._metric_objs

    def build_optimizer(self):
        """Create the optimizer's state for the trainable weights (`optimizer.build(model.trainable_weights)`), as
        fit does before the first step; nothing changes when it is built already."""
        if not self.optimizer.built:
            self.optimizer.build(self.trainable_weights)

    @staticmethod
    def _logs(loss_sum, count, metric_objs, prefix=""):
        logs = {prefix + "loss": loss_sum / count if count else 0.0}
        for m in metric_objs:
            value = float(m.result())
            logs[prefix + m.name] = value
            if m.name in _ACC_ALIAS:
                logs[prefix + _ACC_ALIAS[m.name]] = value
        return logs

    @staticmethod
    def _display(logs, metric_objs, prefix=""):
        names = ["loss"] + [m.name for m in metric_objs]
        return [(prefix + n, logs[prefix + n]) for n in names if prefix + n in logs]

    # ----- fit --------------------------------------------------------------------------------------------------
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, class_weight=None, sample_weight=None, initial_epoch=0,
            steps_per_epoch=None, validation_steps=None, validation_batch_size=None, validation_freq=1,
            max_queue_size=10, workers=1, use_multiprocessing=False, profile=False):
        """Train for `epochs` epochs over (x, y) in batches of `batch_size`; returns a History.
        `profile=True` times every layer (see cnnlite.profile), prints the table after the run (unless verbose=0)
        and keeps it as `history.profile` and `model.last_profile`."""
        if not isinstance(profile, (bool, np.bool_)):
            raise ValueError(f"fit: `profile` must be a bool, received profile={profile!r}")
        prof = profiler.profile() if profile else None
        with (prof if prof is not None else contextlib.nullcontext()), self._training_guard("fit"):
            try:
                history = self._fit(x, y, batch_size, epochs, verbose, callbacks, validation_split, validation_data,
                                    shuffle, class_weight, sample_weight, initial_epoch, steps_per_epoch,
                                    validation_steps, validation_batch_size, validation_freq)
            finally:
                if prof is not None:
                    self.last_profile = prof
        if prof is not None:
            if history is not None:
                history.profile = prof
            if verbose not in (0, False) and distributed.is_primary():
                print(prof.table(), flush=True)
        return history

    def _fit(self, x, y, batch_size, epochs, verbose, callbacks, validation_split, validation_data, shuffle,
             class_weight, sample_weight, initial_epoch, steps_per_epoch, validation_steps, validation_batch_size,
             validation_freq):
        self._require_compiled("training it (fit)")
        batch_size = da.check_batch_size(batch_size, "fit")
        epochs = da.check_nonneg_int(epochs, "epochs", "fit")
        initial_epoch = da.check_nonneg_int(initial_epoch, "initial_epoch", "fit")
        verbose = da.check_verbose(verbose, "fit")
        if not distributed.is_primary():
            verbose = 0  # only rank 0 prints
        val_batch_size = da.check_batch_size(validation_batch_size or batch_size, "fit")
        validation_freq = da.check_nonneg_int(validation_freq, "validation_freq", "fit")
        if validation_freq == 0:
            raise ValueError("fit: `validation_freq` must be a positive integer, received 0")
        for key, value in (("class_weight", class_weight), ("sample_weight", sample_weight),
                           ("steps_per_epoch", steps_per_epoch), ("validation_steps", validation_steps)):
            if value is not None:
                raise NotImplementedError(f"fit: `{key}` is not supported by cnnlite, received {key}={value!r}")
        if not (isinstance(shuffle, (bool, np.bool_)) or shuffle == "batch"):
            raise ValueError(f"fit: `shuffle` must be True, False or 'batch', received shuffle={shuffle!r}")
        shuffle = "batch" if shuffle == "batch" else bool(shuffle)
        if isinstance(validation_split, bool) or not isinstance(validation_split, (int, float, np.floating)) \
                or not 0.0 <= validation_split < 1.0:
            raise ValueError(f"fit: `validation_split` must be a float in [0, 1), "
                             f"received validation_split={validation_split!r}")

        x, y = self._prepare_xy(x, y)
        val = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise ValueError(f"fit: `validation_data` must be a tuple (x_val, y_val), received "
                                 f"{type(validation_data).__name__} of length "
                                 f"{len(validation_data) if hasattr(validation_data, '__len__') else '?'}")
            if len(validation_data) == 3 and validation_data[2] is not None:
                raise NotImplementedError("fit: sample weights in `validation_data` are not supported by cnnlite")
            val = self._prepare_xy(validation_data[0], validation_data[1], "x_val", "y_val")
        elif validation_split:
            split_at = int(len(x) * (1.0 - validation_split))
            if split_at == 0 or split_at == len(x):
                raise ValueError(f"fit: validation_split={validation_split} of {len(x)} samples leaves "
                                 f"{split_at} for training and {len(x) - split_at} for validation; both must be > 0")
            x, y, val = x[:split_at], y[:split_at], (x[split_at:], y[split_at:])
        if len(x) == 0:
            raise ValueError("fit: received 0 training samples")

        # Refuse up front a batch that cannot fit (issue 13): MemoryError with the figures, nothing allocated yet.
        _memory.check_batch_fits(self._current_plan(), min(batch_size, len(x)), True, "fit")
        if val is not None and len(val[0]):
            _memory.check_batch_fits(self._current_plan(), min(val_batch_size, len(val[0])), False,
                                     "fit (validation)")
        world = distributed.world()
        if world is not None:
            world.check_shards(min(batch_size, len(x)), "fit")
            world.check_same_data([x, y] + (list(val) if val is not None else []), "fit")
        self._ensure_rngs()
        self.build_optimizer()
        if world is not None:
            world.sync_model(self)  # rank 0's weights, optimizer state and random state everywhere
        metric_objs = self._resolved_metrics()
        plan = self._current_plan()
        batcher = da.Batcher([x, y], batch_size)
        self.stop_training = False
        cbs = CallbackList(callbacks, add_history=True, model=self, epochs=epochs, steps=batcher.steps,
                           verbose=verbose)
        try:
            return self._fit_epochs(x, y, val, batcher, plan, metric_objs, cbs, shuffle, batch_size, val_batch_size,
                                    initial_epoch, epochs, verbose, validation_freq)
        except BaseException as error:
            if world is not None:  # the other ranks wait in a collective for this one: end them all
                world.abort(error)
            raise

    def _fit_epochs(self, x, y, val, batcher, plan, metric_objs, cbs, shuffle, batch_size, val_batch_size,
                    initial_epoch, epochs, verbose, validation_freq):
        history = self.history
        timer = profiler.timer("train")
        clock = timer.clock
        cbs.on_train_begin({})
        logs = {}
        for epoch in range(initial_epoch, epochs):
            if verbose:  # before the callbacks' hooks, as Keras's progress logger comes first
                print(f"Epoch {epoch + 1}/{epochs}", flush=True)
            cbs.on_epoch_begin(epoch, {})
            progbar = Progbar(batcher.steps, verbose=verbose)
            t_mark = clock()  # 'other' includes the shuffle below
            order = self._epoch_order(len(x), batch_size, shuffle)
            loss_sum, count = 0.0, 0
            for m in metric_objs:
                m.reset_state()
            for step, (start, stop, (xb, yb)) in enumerate(batcher.batches(order)):
                cbs.on_train_batch_begin(step, {"batch": step, "size": stop - start})
                loss, pred = self._train_step(plan, xb, yb, timer)
                loss_sum += loss * (stop - start)
                count += stop - start
                for m in metric_objs:
                    m.update_state(yb, pred)
                logs = self._logs(loss_sum, count, metric_objs)
                cbs.on_train_batch_end(step, dict(logs))
                progbar.update(step + 1, self._display(logs, metric_objs))
                t_mark = timer.wall(t_mark, 1, stop - start)  # per step: an interrupted epoch still counts
                if self.stop_training:
                    break
            epoch_logs = dict(logs)
            if val is not None and (epoch + 1) % validation_freq == 0:
                val_loss, val_metrics = self._evaluate_arrays(val[0], val[1], val_batch_size, cbs)
                epoch_logs.update(self._logs(val_loss, 1, val_metrics, prefix="val_"))
                display = self._display(epoch_logs, metric_objs) + self._display(epoch_logs, val_metrics, "val_")
            else:
                display = self._display(epoch_logs, metric_objs)
            progbar.update(step + 1, display, finalize=True)
            cbs.on_epoch_end(epoch, epoch_logs)
            logs = epoch_logs
            if self.stop_training:
                break
        cbs.on_train_end(dict(logs))
        return history

    def _epoch_order(self, n, batch_size, shuffle):
        if shuffle is True:
            return self._shuffle_rng.permutation(n)
        if shuffle == "batch":
            starts = self._shuffle_rng.permutation(-(-n // batch_size)) * batch_size
            return np.concatenate([np.arange(s, min(s + batch_size, n)) for s in starts])
        return None

    # ----- evaluate / predict -----------------------------------------------------------------------------------
    def _evaluate_arrays(self, x, y, batch_size, cbs=None, progbar=None):
        """Mean loss and metric objects over (x, y) in inference mode; fires on_test_* hooks on `cbs`."""
        metric_objs = [metrics_mod.resolve(m, self._loss_obj, self.output_shape[-1]) for m in self._metric_specs]
        metric_objs = [type(m).from_config(m.get_config()) for m in metric_objs]  # fresh state
        batcher = da.Batcher([x, y], batch_size)
        if cbs is not None:
            cbs.on_test_begin({})
        plan = self._current_plan()
        timer = profiler.timer("evaluate")
        t_start = timer.clock()
        loss_sum, count = 0.0, 0
        for step, (start, stop, (xb, yb)) in enumerate(batcher.batches()):
            if cbs is not None:
                cbs.on_test_batch_begin(step, {"batch": step, "size": stop - start})
            loss, pred = self._test_step(plan, xb, yb, timer)
            loss_sum += loss * (stop - start)
            count += stop - start
            for m in metric_objs:
                m.update_state(yb, pred)
            if cbs is not None or progbar is not None:
                logs = self._logs(loss_sum, count, metric_objs)
                if cbs is not None:
                    cbs.on_test_batch_end(step, logs)
                if progbar is not None:
                    progbar.update(step + 1, self._display(logs, metric_objs), finalize=stop == len(x))
        timer.wall(t_start, batcher.steps, count)
        mean = loss_sum / count if count else 0.0
        if cbs is not None:
            cbs.on_test_end(self._logs(loss_sum, count, metric_objs))
        return mean, metric_objs

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, steps=None,
                 callbacks=None, max_queue_size=10, workers=1, use_multiprocessing=False, return_dict=False):
        """Loss and metrics over (x, y) in inference mode: [loss, acc] (a float when there are no metrics)."""
        self._require_compiled("evaluating it")
        self._check_not_training_elsewhere("evaluate")
        batch_size = da.check_batch_size(batch_size, "evaluate")
        verbose = da.check_verbose(verbose, "evaluate")
        if not distributed.is_primary():
            verbose = 0  # only rank 0 prints
        for key, value in (("sample_weight", sample_weight), ("steps", steps)):
            if value is not None:
                raise NotImplementedError(f"evaluate: `{key}` is not supported by cnnlite, received {key}={value!r}")
        x, y = self._prepare_xy(x, y)
        if len(x) == 0:
            raise ValueError("evaluate: received 0 samples")
        _memory.check_batch_fits(self._current_plan(), min(batch_size, len(x)), False, "evaluate")
        cbs = CallbackList(callbacks, model=self, epochs=1, steps=-(-len(x) // batch_size), verbose=verbose)
        progbar = Progbar(-(-len(x) // batch_size), verbose=verbose) if verbose else None
        loss, metric_objs = self._evaluate_arrays(x, y, batch_size, cbs, progbar)
        return self._results(loss, metric_objs, return_dict)

    @staticmethod
    def _results(loss, metric_objs, return_dict):
        if return_dict:
            out = {"loss": loss}
            out.update((m.name, float(m.result())) for m in metric_objs)
            return out
        if not metric_objs:
            return loss
        return [loss] + [float(m.result()) for m in metric_objs]

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None, max_queue_size=10, workers=1,
                use_multiprocessing=False):
        """The model's outputs (probabilities for a softmax model) for `x`, computed in batches."""
        batch_size = da.check_batch_size(batch_size, "predict")
        verbose = da.check_verbose(verbose, "predict")
        if not distributed.is_primary():
            verbose = 0  # only rank 0 prints
        if steps is not None:
            raise NotImplementedError(f"predict: `steps` is not supported by cnnlite, received steps={steps!r}")
        self._check_not_training_elsewhere("predict")
        x = self._prepare_x(x)
        plan = self._current_plan()
        if len(x):
            _memory.check_batch_fits(plan, min(batch_size, len(x)), False, "predict")
        batcher = da.Batcher([x], batch_size)
        cbs = CallbackList(callbacks, model=self, epochs=1, steps=batcher.steps, verbose=verbose)
        progbar = Progbar(batcher.steps, verbose=verbose) if verbose else None
        out = np.empty((len(x),) + tuple(self.output_shape[1:]), np.float32)
        cbs.on_predict_begin({})
        timer = profiler.timer("predict")
        t_start = timer.clock()
        for step, (start, stop, (xb,)) in enumerate(batcher.batches()):
            cbs.on_predict_batch_begin(step, {"batch": step, "size": stop - start})
            out[start:stop] = self._inference(plan, xb, timer)
            cbs.on_predict_batch_end(step, {"outputs": out[start:stop]})
            if progbar is not None:
                progbar.update(step + 1, (), finalize=stop == len(x))
        timer.wall(t_start, batcher.steps, len(x))
        cbs.on_predict_end({})
        return out

    # ----- single batches ---------------------------------------------------------------------------------------
    def _tracker(self, reset):
        if reset or self._batch_tracker is None:
            self._batch_tracker = [0.0, 0, [type(m).from_config(m.get_config()) for m in self._resolved_metrics()]]
        return self._batch_tracker

    def _on_batch(self, x, y, training, reset_metrics, return_dict, sample_weight, class_weight=None):
        what = "training it (train_on_batch)" if training else "evaluating it (test_on_batch)"
        self._require_compiled(what)
        if sample_weight is not None or class_weight is not None:
            raise NotImplementedError("sample_weight and class_weight are not supported by cnnlite")
        with (self._training_guard("train_on_batch") if training else contextlib.nullcontext()):
            if not training:
                self._check_not_training_elsewhere("test_on_batch")
            timer = profiler.timer("train" if training else "evaluate")
            t_start = timer.clock()
            x, y = self._prepare_xy(x, y)
            if len(x):
                _memory.check_batch_fits(self._current_plan(), len(x), training,
                                         "train_on_batch" if training else "test_on_batch")
            if training:
                self._ensure_rngs()
                first = not self.optimizer.built
                self.build_optimizer()
                world = distributed.world()
                if world is not None:
                    world.check_shards(len(x), "train_on_batch")
                    world.check_same_data([x, y], "train_on_batch")
                    if first:  # as fit does at its start: rank 0's state everywhere
                        world.sync_model(self)
            plan = self._current_plan()
            tracker = self._tracker(reset_metrics)
            loss, pred = (self._train_step if training else self._test_step)(plan, x, y, timer)
            tracker[0] += loss * len(x)
            tracker[1] += len(x)
            for m in tracker[2]:
                m.update_state(y, pred)
            results = self._results(tracker[0] / tracker[1], tracker[2], return_dict)
            timer.wall(t_start, 1, len(x))
        return results

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, reset_metrics=True,
                       return_dict=False):
        """One gradient step on (x, y); returns [loss, metrics...] for that batch."""
        return self._on_batch(x, y, True, reset_metrics, return_dict, sample_weight, class_weight)

    def test_on_batch(self, x, y=None, sample_weight=None, reset_metrics=True, return_dict=False):
        """Loss and metrics on one batch in inference mode."""
        return self._on_batch(x, y, False, reset_metrics, return_dict, sample_weight)

    def _forward_one_batch(self, x, name, training):
        self._check_not_training_elsewhere("predict_on_batch" if name == "x" else "the model's __call__")
        timer = profiler.timer("predict")
        t_start = timer.clock()
        x = self._prepare_x(x, name)
        plan = self._current_plan()
        if len(x):
            _memory.check_batch_fits(plan, len(x), training, "predict_on_batch" if name == "x" else "__call__")
        out = plan.forward(x, training, timer)[0]
        timer.wall(t_start, 1, len(x))
        return out

    def predict_on_batch(self, x):
        """The model's outputs for one batch."""
        return self._forward_one_batch(x, "x", False)

    def __call__(self, inputs, training=False):
        """Run the model eagerly on a NumPy batch."""
        return self._forward_one_batch(inputs, "inputs", bool(training))
