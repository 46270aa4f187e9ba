"""Keras configs <-> cnnlite configs, on plain JSON data.

Reading accepts what Keras 3 (`.keras` config.json, legacy `.h5` model_config) and Keras 2 / tf.keras write for a
Sequential model of the layers cnnlite has. Every option is either mapped, known to be at a value cnnlite computes
identically (None, False, 'channels_last', ...), or refused with a ValueError naming the layer and the option: a
file never silently becomes a different model. Nothing is imported or called by name from a file: class names are
looked up in fixed tables (Keras's `safe_mode`, always on).
"""
import inspect
import math

from cnnlite import activations, initializers, losses, metrics

KERAS_VERSION = "3.0.0"   # the oldest Keras whose .keras format these files follow; written in metadata.json

# The saving package imports no layer or optimizer module (tests/test_import_graph.py), so the classes a Keras file
# may name are fixed here by name, with the keyword arguments their constructors take; the model class (found through
# the registry) builds them, and tests/test_keras_files.py checks these tables against the real signatures.
_POOL = ("data_format", "padding", "pool_size", "strides")
_WEIGHTED = ("activation", "activity_regularizer", "bias_constraint", "bias_initializer", "bias_regularizer",
             "kernel_constraint", "kernel_initializer", "kernel_regularizer", "use_bias")
LAYER_KWARGS = {
    "Dense": _WEIGHTED + ("units",),
    "Conv2D": _WEIGHTED + ("data_format", "dilation_rate", "filters", "groups", "kernel_size", "padding", "strides"),
    "MaxPooling2D": _POOL, "AveragePooling2D": _POOL,
    "Dropout": ("noise_shape", "rate", "seed"), "Flatten": ("data_format",), "Activation": ("activation",),
    "InputLayer": ("batch_shape", "batch_size", "dtype", "input_shape", "name", "shape"),
}
_LAYERS = {name: name for name in LAYER_KWARGS}
_LAYERS.update({"Convolution2D": "Conv2D", "MaxPool2D": "MaxPooling2D", "AvgPool2D": "AveragePooling2D"})
OPTIMIZER_KWARGS = {
    "Adam": ("amsgrad", "beta_1", "beta_2", "epsilon", "learning_rate", "name"),
    "SGD": ("learning_rate", "momentum", "name", "nesterov"),
    "RMSprop": ("centered", "epsilon", "learning_rate", "momentum", "name", "rho"),
}
_LAYER_MODULES = {None, "keras", "keras.layers", "keras.src.layers"}

# Options cnnlite has no argument for, with the values at which Keras computes what cnnlite computes.
_NEUTRAL = {
    "kernel_regularizer": (None,), "bias_regularizer": (None,), "activity_regularizer": (None,),
    "kernel_constraint": (None,), "bias_constraint": (None,), "quantization_config": (None,),
    "lora_rank": (None, 0), "lora_alpha": (None,), "sparse": (None, False), "ragged": (None, False),
    "optional": (False,), "input_tensor": (None,), "dilation_rate": ((1, 1), [1, 1], 1),
    "groups": (1,), "autocast": (True,), "synchronized": (False,),
}
_ACTIVATIONS = set(activations.REGISTRY.names())


def _is_neutral(key, value):
    return key in _NEUTRAL and any(value == v for v in _NEUTRAL[key])


def _dtype_name(value):
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict):  # Keras 3 DTypePolicy
        config = value.get("config")
        if isinstance(config, dict) and isinstance(config.get("name"), str):
            return config["name"]
    return repr(value)


def _activation(value, owner, fail):
    if value is None:
        return "linear"
    if isinstance(value, dict):  # older Keras 3: {"module": "keras.activations", "class_name": "function", ...}
        value = value.get("config") if isinstance(value.get("config"), str) else value.get("class_name")
    if not isinstance(value, str) or value not in _ACTIVATIONS:
        fail(f"{owner}: activation {value!r} is not supported by cnnlite (supported: {sorted(_ACTIVATIONS)})")
    return value


def _accepts(cls):
    params = inspect.signature(cls.__init__).parameters
    return {name for name, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)} - {"self"}


def _initializer(value, owner, fail):
    if isinstance(value, str):
        spec = {"class_name": value, "config": {}}
    elif isinstance(value, dict) and isinstance(value.get("class_name"), str):
        spec = {"class_name": value["class_name"], "config": dict(value.get("config") or {})}
    else:
        fail(f"{owner}: initializer {value!r} is not supported by cnnlite")
    cls = initializers.REGISTRY.find(spec["class_name"])
    if cls is None:
        fail(f"{owner}: initializer {spec['class_name']!r} is not supported by cnnlite")
    accepted = _accepts(cls)
    config = {}
    for key, item in spec["config"].items():
        if key in accepted:
            config[key] = item
        elif item is not None:
            fail(f"{owner}: initializer option {key}={item!r} is not supported by cnnlite")
    return {"class_name": cls.__name__, "config": config}


def layer_from_keras(spec, fail, first=False):
    """cnnlite's `{"class_name", "config"}` for one Keras layer spec; `fail(message)` raises."""
    if not isinstance(spec, dict) or not isinstance(spec.get("config"), dict):
        fail(f"a layer entry is not a {{'class_name', 'config'}} object: {spec!r}"[:300])
    class_name = spec.get("class_name")
    config = spec["config"]
    name = config.get("name", "?")
    owner = f"layer {name!r} ({class_name})"
    if spec.get("module") not in _LAYER_MODULES or spec.get("registered_name") not in (None, class_name):
        fail(f"{owner}: custom layer {spec.get('registered_name') or spec.get('module')!r} cannot be loaded: "
             "cnnlite runs no code from files and has only its built-in layers")
    cnnlite_name = _LAYERS.get(class_name)
    if cnnlite_name is None:
        fail(f"{owner}: layer class {class_name!r} is not supported by cnnlite "
             f"(supported: {sorted(set(_LAYERS) - {'Convolution2D', 'MaxPool2D', 'AvgPool2D'})})")
    accepted = set(LAYER_KWARGS[cnnlite_name]) | {"name", "trainable", "dtype", "input_shape", "batch_input_shape",
                                                  "batch_size"}
    out = {}
    for key, value in config.items():
        if key == "dtype":
            dtype = _dtype_name(value)
            if dtype not in (None, "float32", "mixed_bfloat16"):
                fail(f"{owner}: dtype {dtype!r} is not supported (cnnlite computes in float32, or mixed_bfloat16)")
            if dtype is not None and class_name != "InputLayer":
                out["dtype"] = dtype  # explicit, as Keras: a float32 layer stays float32 under a global policy
            continue
        if key == "data_format" and value == "channels_first":
            fail(f"{owner}: data_format='channels_first' is not supported (cnnlite is channels_last, NHWC)")
        if key == "data_format" and value == "channels_last":
            value = None  # cnnlite's default, the same computation
        if key == "activation":
            value = _activation(value, owner, fail)
        elif key.endswith("_initializer") and value is not None:
            value = _initializer(value, owner, fail)
        if key in accepted and not (key in ("groups", "dilation_rate") and _is_neutral(key, value)):
            out[key] = value
        elif _is_neutral(key, value) or (key not in accepted and value is None):
            continue
        else:
            fail(f"{owner}: option {key}={value!r} is not supported by cnnlite")
    if class_name == "InputLayer" and "batch_shape" not in out and "batch_input_shape" not in out:
        if "input_shape" not in out and "shape" not in out:
            fail(f"{owner}: it declares no input shape")
    if not first:
        out.pop("batch_input_shape", None)
        out.pop("input_shape", None)
    return {"class_name": cnnlite_name, "config": out}


def model_from_keras(spec, fail):
    """cnnlite's Sequential config (for `Sequential.from_config`) from a Keras model spec."""
    if not isinstance(spec, dict):
        fail("the model config is not an object")
    class_name = spec.get("class_name")
    if class_name != "Sequential" or spec.get("module") not in (None, "keras", "keras.models", "keras.src.models"):
        fail(f"model class {class_name!r} is not supported: cnnlite loads Sequential models only")
    config = spec.get("config")
    if isinstance(config, list):  # Keras 2.0-2.2 wrote the layer list directly
        config = {"layers": config}
    if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
        fail("the Sequential config has no list of layers")
    layer_specs = config["layers"]
    converted = [layer_from_keras(s, fail, first=(i == 0)) for i, s in enumerate(layer_specs)]
    out = {"name": config.get("name") or "sequential", "layers": converted}
    shape = config.get("build_input_shape")
    if shape is None and isinstance(spec.get("build_config"), dict):
        shape = spec["build_config"].get("input_shape")
    if shape is not None:
        if not isinstance(shape, list) or not all(d is None or (isinstance(d, int) and d > 0) for d in shape):
            fail(f"invalid build input shape {shape!r}")
        out["build_input_shape"] = shape
    return out


# --- compile settings --------------------------------------------------------------------------------------

_OPTIMIZER_KWARGS = ("lr", "decay", "clipnorm", "clipvalue", "global_clipnorm")  # every cnnlite optimizer's
_OPTIMIZER_NEUTRAL = {"weight_decay": (None, 0, 0.0), "use_ema": (False,), "ema_momentum": None,
                      "ema_overwrite_frequency": (None,), "loss_scale_factor": (None,),
                      "gradient_accumulation_steps": (None, 1), "jit_compile": None, "is_legacy_optimizer": None,
                      "decay": (0, 0.0)}


def optimizer_from_keras(spec, fail):
    if isinstance(spec, str):
        spec = {"class_name": spec, "config": {}}
    if not isinstance(spec, dict) or not isinstance(spec.get("class_name"), str):
        fail(f"invalid optimizer config {spec!r}"[:300])
    class_name = spec["class_name"].split(">")[-1]  # tf.keras 2.11+: "Custom>Adam"
    if spec.get("module") not in (None, "keras.optimizers", "keras.src.optimizers"):
        fail(f"optimizer {spec.get('module')}.{class_name} is not supported by cnnlite")
    cnnlite_name = next((name for name in OPTIMIZER_KWARGS if name.lower() == class_name.lower()), None)
    if cnnlite_name is None:
        fail(f"optimizer {class_name!r} is not supported by cnnlite (supported: {sorted(OPTIMIZER_KWARGS)})")
    accepted = set(OPTIMIZER_KWARGS[cnnlite_name]) | set(_OPTIMIZER_KWARGS)
    config = {}
    for key, value in (spec.get("config") or {}).items():
        if key in ("learning_rate", "lr"):
            if isinstance(value, dict):
                fail(f"optimizer {class_name}: learning-rate schedule {value.get('class_name')!r} is not "
                     "supported by cnnlite (only a constant learning rate)")
            config["learning_rate"] = value
        elif key in _OPTIMIZER_NEUTRAL:
            allowed = _OPTIMIZER_NEUTRAL[key]
            if key == "decay" and value not in (0, 0.0, None):
                config["decay"] = value  # Keras 2 time-based decay: cnnlite has it
            elif allowed is not None and value not in allowed:
                fail(f"optimizer {class_name}: option {key}={value!r} is not supported by cnnlite")
        elif key == "name":
            config["name"] = value if isinstance(value, str) else class_name
        elif key in accepted:
            if value is not None or key in ("clipnorm", "clipvalue", "global_clipnorm"):
                if value is not None:
                    config[key] = value
        elif value is not None:
            fail(f"optimizer {class_name}: option {key}={value!r} is not supported by cnnlite")
    return {"class_name": cnnlite_name, "config": config}


_LOSS_NEUTRAL = {"axis": (-1,), "dtype": (None, "float32"), "reduction": ("sum_over_batch_size", "auto", None)}


def loss_from_keras(value, fail):
    if isinstance(value, str):
        if losses.REGISTRY.find(value, "aliases") is None:
            fail(f"loss {value!r} is not supported by cnnlite (supported: {losses.REGISTRY.names('aliases')})")
        return value
    if isinstance(value, dict) and isinstance(value.get("class_name"), str):
        name = value["class_name"]
        cls = losses.REGISTRY.find(name, "classes")
        if cls is None or value.get("module") not in (None, "keras.losses", "keras.src.losses"):
            if name == "function" and isinstance(value.get("config"), str):
                return loss_from_keras(value["config"], fail)
            fail(f"loss {name!r} is not supported by cnnlite (supported: {losses.REGISTRY.names('classes')})")
        accepted = _accepts(cls)
        config = {}
        for key, item in (value.get("config") or {}).items():
            if key in accepted and not (key == "reduction" and item is None):
                config[key] = "sum_over_batch_size" if key == "reduction" and item == "auto" else item
            elif key in _LOSS_NEUTRAL and item in _LOSS_NEUTRAL[key]:
                continue
            elif item is not None:
                fail(f"loss {name}: option {key}={item!r} is not supported by cnnlite")
        return {"class_name": cls.__name__, "config": config}
    fail(f"loss {value!r} is not supported by cnnlite (one loss for one output)"[:300])


_METRIC_CLASSES = {"CategoricalAccuracy": "categorical_accuracy", "SparseCategoricalAccuracy":
                   "sparse_categorical_accuracy", "BinaryAccuracy": "binary_accuracy",
                   "MeanSquaredError": "mean_squared_error", "MeanAbsoluteError": "mean_absolute_error",
                   "Accuracy": "accuracy"}


def metrics_from_keras(value, fail):
    if value is None:
        return []
    if isinstance(value, dict):
        fail("per-output metrics are not supported (cnnlite models have one output)")
    out = []
    for item in value:
        if isinstance(item, list):  # Keras 2 multi-output nesting, one output
            out.extend(metrics_from_keras(item, fail))
            continue
        if isinstance(item, dict):
            name = _METRIC_CLASSES.get(item.get("class_name"))
            if name is None and item.get("class_name") == "MeanMetricWrapper":
                name = (item.get("config") or {}).get("name")
            item = name if name is not None else item.get("class_name")
        try:
            metrics.check_identifier(item)
        except ValueError:
            fail(f"metric {item!r} is not supported by cnnlite")
        out.append(item)
    return out


def compile_from_keras(config, fail):
    """(optimizer config, loss, metrics) for `model.compile` from Keras 3's compile_config or Keras 2's
    training_config."""
    if not isinstance(config, dict):
        fail("the compile config is not an object")
    for key in ("loss_weights", "weighted_metrics", "sample_weight_mode"):
        if config.get(key) not in (None, [], {}):
            fail(f"compile option {key}={config[key]!r} is not supported by cnnlite")
    optimizer = config.get("optimizer", config.get("optimizer_config"))
    if optimizer is None:
        fail("the compile config names no optimizer")
    return (optimizer_from_keras(optimizer, fail), loss_from_keras(config.get("loss"), fail),
            metrics_from_keras(config.get("metrics"), fail))


# --- writing: cnnlite -> Keras --------------------------------------------------------------------------------

def _module_spec(module, class_name, config, legacy):
    if legacy:
        return {"class_name": class_name, "config": config}
    return {"module": module, "class_name": class_name, "config": config, "registered_name": None}


def _dtype_spec(legacy, name="float32"):
    """A layer's dtype policy as Keras writes it: Keras 3 a DTypePolicy object; tf.keras 2 the name, or for a mixed
    policy its Policy object."""
    if legacy:
        return name if name == "float32" else {"class_name": "Policy", "config": {"name": name}}
    return _module_spec("keras", "DTypePolicy", {"name": name}, False)


def _keras_layer_config(layer, legacy):
    config = dict(layer.get_config())
    config.pop("batch_input_shape", None)
    config["dtype"] = _dtype_spec(legacy, layer.dtype_policy.name)
    for key, value in list(config.items()):
        if key.endswith("_initializer") and isinstance(value, dict):
            config[key] = _module_spec("keras.initializers", value["class_name"], value.get("config", {}), legacy)
    if config.get("data_format") is None and "data_format" in config:
        config["data_format"] = "channels_last"
    if type(layer).__name__ == "Dropout" and legacy:
        config.setdefault("noise_shape", None)
    return config


def model_to_keras(model, legacy=False):
    """The Keras spec of a cnnlite Sequential model: Keras 3 form (modules, DTypePolicy, build_config) or, with
    `legacy`, the Keras 2 form that both tf.keras 2 and Keras 3 read from an `.h5` file."""
    build_config = model.get_build_config()
    shape = None if build_config is None else list(build_config["input_shape"])
    layer_specs = []
    first = (model.get_config().get("layers") or [{}])[0]
    input_name = first["config"]["name"] if first.get("class_name") == "InputLayer" else \
        f"input_layer_{model.name}"[:60]
    if shape is not None:
        input_config = {"batch_input_shape" if legacy else "batch_shape": shape, "dtype": "float32",
                        "sparse": False, "ragged": False, "name": input_name}
        layer_specs.append(_module_spec("keras.layers", "InputLayer", input_config, legacy))
    current = shape
    for layer in model.layers:
        spec = _module_spec("keras.layers", type(layer).__name__, _keras_layer_config(layer, legacy), legacy)
        if current is not None and not legacy:
            spec["build_config"] = {"input_shape": list(current)}
        if current is not None:
            current = [None if d is None else int(d) for d in layer.compute_output_shape(tuple(current))]
        layer_specs.append(spec)
    config = {"name": model.name, "trainable": bool(model.trainable), "dtype": _dtype_spec(legacy),
              "layers": layer_specs}
    if shape is not None:
        config["build_input_shape"] = shape
    spec = {"class_name": "Sequential", "config": config}
    if not legacy:
        spec = {"module": "keras", "class_name": "Sequential", "config": config, "registered_name": None}
        if shape is not None:
            spec["build_config"] = {"input_shape": shape}
    return spec


_KERAS3_OPTIMIZER_DEFAULTS = {"weight_decay": None, "clipnorm": None, "global_clipnorm": None, "clipvalue": None,
                              "use_ema": False, "ema_momentum": 0.99, "ema_overwrite_frequency": None,
                              "loss_scale_factor": None, "gradient_accumulation_steps": None}


def optimizer_to_keras(optimizer, legacy=False):
    """(Keras optimizer spec, list of problems that Keras cannot represent)."""
    config = dict(optimizer.get_config())
    problems = []
    name = config.pop("name", type(optimizer).__name__)
    decay = config.pop("decay", 0.0)
    if decay and not legacy:
        problems.append(f"Keras 3 optimizers have no time-based decay (decay={decay}); Keras will train without it")
    out = {"name": str(name).lower() if not legacy else name}
    if not legacy:
        out.update(_KERAS3_OPTIMIZER_DEFAULTS)
    elif decay:
        out["decay"] = decay
    out.update({k: v for k, v in config.items() if v is not None})
    return _module_spec("keras.optimizers", type(optimizer).__name__, out, legacy), problems


def loss_to_keras(loss, legacy=False):
    """Keras's form of a `get_compile_config()` loss (a name, or a loss config)."""
    if loss is None or isinstance(loss, str):
        return loss
    if not isinstance(loss, dict):
        return None
    return _module_spec("keras.losses", loss["class_name"], dict(loss.get("config", {})), legacy)


def compile_to_keras(model, legacy=False):
    """(Keras 3 compile_config, or with `legacy` Keras 2's training_config; problems), or (None, []) when the model
    is not compiled."""
    try:
        compile_config = model.get_compile_config()
    except ValueError as e:  # a loss or metric that no config can name
        return None, [f"the model is saved without its compile settings because {e}"]
    if compile_config is None:
        return None, []
    optimizer_spec, problems = optimizer_to_keras(model.optimizer, legacy)
    loss = loss_to_keras(compile_config["loss"], legacy)
    metric_names = list(compile_config["metrics"])
    config = {"loss": loss, "loss_weights": None, "metrics": metric_names, "weighted_metrics": None}
    if legacy:
        config["optimizer_config"] = optimizer_spec
    else:
        config = {"optimizer": optimizer_spec, **config, "run_eagerly": False, "steps_per_execution": 1,
                  "jit_compile": False}
    return config, problems


def finite_float(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
