"""``MovingAverages``: the one place that swaps a model's trained weights and their moving averages.

With ``use_ema`` the hat optimizer keeps a moving average of every trainable
weight of the model (both networks of a ``HatEBM``, as the reference keeps
EMA 0.9999 on both). A run trains from, and checkpoints, the trained
weights; it samples for its quality figures and saves ``model.keras`` with
their averages. Keras's ``fit`` itself ends by overwriting the weights with
the averages, and a run trains in several ``fit`` calls (a shorter first or
last epoch, resumes, rollbacks): the trained weights kept at the last epoch
end, after the last step and before that overwrite, are put back after each.
"""

import contextlib


class MovingAverages:
    """A model's trained weights and their moving averages (kept by ``model.optimizer`` with ``use_ema``).

    Args:
        model: a compiled Keras model.
    """

    def __init__(self, model):
        self.model = model
        self._trained = None

    @property
    def kept(self):
        """Whether the model's optimizer keeps moving averages (without, the swaps change nothing)."""
        return bool(getattr(self.model.optimizer, "use_ema", False))

    def _values(self):
        return [variable.numpy() for variable in self.model.trainable_weights]

    def _assign(self, values):
        for variable, value in zip(self.model.trainable_weights, values, strict=True):
            variable.assign(value)

    def keep_trained(self):
        """Remember the weights as they are now, the trained ones (at an epoch end, before ``fit`` swaps)."""
        self._trained = self._values()

    def restore_trained(self):
        """Put back the weights ``keep_trained`` remembered (after ``fit`` swapped the averages in)."""
        self._assign(self._trained)

    def swap_in(self):
        """Overwrite the weights with their moving averages, for good (e.g. before the model is saved)."""
        self.model.optimizer.finalize_variable_values(self.model.trainable_weights)

    @contextlib.contextmanager
    def applied(self):
        """Within the block, the weights are their moving averages; after it, what they were."""
        if not self.kept:
            yield
            return
        values = self._values()
        self.swap_in()
        try:
            yield
        finally:
            self._assign(values)
