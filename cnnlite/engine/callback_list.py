"""Calls Keras callback hooks on a list of callbacks (hooks a callback lacks are skipped)."""


class _History:
    """Minimal History used only when cnnlite.callbacks is unavailable."""

    def __init__(self):
        self.history, self.epoch, self.params, self.model = {}, [], {}, None

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)


def new_history():
    try:
        from cnnlite.callbacks import History
    except ImportError:
        return _History()
    return History()


class CallbackList:
    def __init__(self, callbacks, model, params):
        if callbacks is None:
            callbacks = []
        elif not isinstance(callbacks, (list, tuple)):
            raise TypeError(f"`callbacks` must be a list of callbacks, received {type(callbacks).__name__}")
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            self._call(cb, "set_model", model)
            self._call(cb, "set_params", params)

    @staticmethod
    def _call(cb, hook, *args):
        fn = getattr(cb, hook, None)
        if fn is not None:
            fn(*args)

    def call(self, hook, *args):
        for cb in self.callbacks:
            self._call(cb, hook, *args)
