"""The classes a saved file may name as its model (`"model": {"class_name": ...}`), registered by the modules that
define them (cnnlite.models registers Sequential), so the saving modules look classes up by name and import no model
module, as Keras's `register_keras_serializable` / `get_registered_object` do.

A registered model class provides `from_config(config)`, `get_config()` and the public state methods the format
uses (see cnnlite_format.py: `get_build_config`/`build_from_config`, `get_compile_config`/`compile_from_config`,
`get_rng_state`/`set_rng_state`, `build_optimizer`, `layers`, `optimizer`)."""
from cnnlite._registry import Registry

__all__ = ["register_model_class", "get_model_class", "model_class_names"]

_MODEL_CLASSES = Registry("model class")


def register_model_class(cls):
    """Make `cls` loadable by its `__name__` (a class decorator; returns `cls`)."""
    return _MODEL_CLASSES.register(cls)


def get_model_class(name):
    """The model class registered as `name`, or None."""
    return _MODEL_CLASSES.find(name, which="classes")


def model_class_names():
    """The registered model class names, sorted."""
    return _MODEL_CLASSES.names("classes")
