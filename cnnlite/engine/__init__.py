"""Training machinery behind cnnlite.models: the step/loop code, data conversion, progress bar and summary."""
