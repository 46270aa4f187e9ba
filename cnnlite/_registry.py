"""One mechanism for cnnlite's name -> object tables (activations, losses, metrics, optimizers, initializers, layers,
model classes): a `Registry` maps canonical names (a class's `__name__`, a function's name) and aliases (Keras's
snake-case strings, old spellings) to the registered objects, and (de)serializes `{"class_name", "config"}`.

A leaf module: it imports nothing from cnnlite, so any module can register its objects without an import cycle.
"""

__all__ = ["Registry"]


class Registry:
    """Names -> objects of one kind (`kind` appears in error messages: "Unknown optimizer: 'foo'. Known: [...]").

    `register(obj, name=None, aliases=())` adds `obj` under `name` (default `obj.__name__`) and each alias; names
    are unique. Lookups choose which names count: `which="classes"` (canonical names), `"aliases"` or `"all"`.
    """

    def __init__(self, kind):
        self.kind = kind
        self._canonical = {}
        self._aliases = {}

    # ----- registering ------------------------------------------------------------------------------------------
    def register(self, obj, name=None, aliases=()):
        """Add `obj` under `name` (default its `__name__`) and `aliases`; returns `obj` (usable as a decorator)."""
        name = obj.__name__ if name is None else name
        for key in (name, *aliases):
            if not isinstance(key, str) or not key:
                raise TypeError(f"{self.kind} registry: names must be non-empty strings, received {key!r}")
            if key in self._canonical or key in self._aliases:
                raise ValueError(f"{self.kind} registry: the name {key!r} is already registered")
        self._canonical[name] = obj
        for alias in aliases:
            self._aliases[alias] = obj
        return obj

    def alias(self, alias, obj):
        """Add another name for an object registered already."""
        if not self.owns(obj):
            raise ValueError(f"{self.kind} registry: {obj!r} is not registered, so it cannot get an alias")
        if alias in self._canonical or alias in self._aliases:
            raise ValueError(f"{self.kind} registry: the name {alias!r} is already registered")
        self._aliases[alias] = obj

    # ----- looking up -------------------------------------------------------------------------------------------
    def _tables(self, which):
        if which == "classes":
            return (self._canonical,)
        if which == "aliases":
            return (self._aliases,)
        if which == "all":
            return (self._canonical, self._aliases)
        raise ValueError(f"which must be 'classes', 'aliases' or 'all', received which={which!r}")

    def names(self, which="all"):
        """The accepted names, sorted."""
        return sorted(key for table in self._tables(which) for key in table)

    def objects(self):
        """The registered objects, each once, in registration order."""
        return list(self._canonical.values())

    def find(self, name, which="all", fold_case=False):
        """The object registered under `name` (lower-cased first with `fold_case`), or None."""
        if not isinstance(name, str):
            return None
        if fold_case:
            name = name.lower()
        for table in self._tables(which):
            if name in table:
                return table[name]
        return None

    def unknown(self, name, shown="all", label="Known"):
        """The ValueError for a name nobody registered: "Unknown <kind>: 'name'. <label>: [names shown]"."""
        return ValueError(f"Unknown {self.kind}: {name!r}. {label}: {self.names(shown)}")

    def get(self, name, which="all", shown=None, label="Known", fold_case=False):
        """The object registered under `name`; ValueError listing the `shown` names (default: `which`) if none."""
        obj = self.find(name, which, fold_case)
        if obj is None:
            raise self.unknown(name, which if shown is None else shown, label)
        return obj

    def owns(self, obj):
        """True when `obj` itself (identity, not equality) is registered."""
        return any(obj is registered for registered in self._canonical.values())

    def name_of(self, obj):
        """The canonical name of a registered object, or None."""
        for name, registered in self._canonical.items():
            if obj is registered:
                return name
        return None

    # ----- configs ----------------------------------------------------------------------------------------------
    @staticmethod
    def serialize(obj):
        """`{"class_name": <its class name>, "config": obj.get_config()}` (JSON-able when the config is)."""
        return {"class_name": type(obj).__name__, "config": obj.get_config()}

    def deserialize(self, config, which="all", shown="classes", label="Known", fold_case=False):
        """The object `serialize` described: the registered class's `from_config(config["config"])`."""
        if not isinstance(config, dict) or "class_name" not in config or \
                not isinstance(config.get("config", {}), dict):
            article = "An" if self.kind[:1].lower() in "aeiou" else "A"
            raise ValueError(f"{article} {self.kind} config must be a dict with 'class_name' and 'config', "
                             f"received {config!r}")
        name = config["class_name"]
        cls = self.find(name, which) or (self.find(name, which, fold_case=True) if fold_case else None)
        if cls is None:
            raise self.unknown(name, shown, label)
        return cls.from_config(dict(config.get("config", {})))

    def __contains__(self, name):
        return self.find(name) is not None

    def __repr__(self):
        return f"<Registry of {self.kind}: {self.names('classes')}>"
