"""The data sets of ``hat-ebm grid`` (``hat_ebm_tf.training.grid``), free of TensorFlow for the command's parser."""

import dataclasses


@dataclasses.dataclass(frozen=True)
class GridSet:
    """One data set of the grid.

    Attributes:
        name: its run directory's name.
        source: the data source.
        image_size: the model's side.
        channels: the model's channels.
        tuned: the recipe was developed on it (False: held out from that work).
        what: a description, for the table.
    """

    name: str
    source: str
    image_size: int
    channels: int
    tuned: bool
    what: str


GRID = (
    GridSet("glyphs-16", "glyphs", 16, 1, True, "glyphs (5000), 16×16"),
    GridSet("glyphs-32", "glyphs", 32, 1, True, "glyphs (5000), 32×32"),
    GridSet("photo-patches-32", "photo-patches", 32, 3, True, "photo patches (5000), 32×32 RGB"),
    GridSet("digits-200-16", "digits:train[:200]", 16, 1, True, "digits, 200 images, 16×16"),
    GridSet("digits-16", "digits", 16, 1, False, "digits (1000), 16×16"),
    GridSet("digits-all-16", "digits:all", 16, 1, False, "all 1797 digits (1618 train), 16×16"),
    GridSet("digits-32", "digits", 32, 1, False, "digits (1000), 32×32"),
    GridSet("digits-64", "digits", 64, 1, False, "digits (1000), 64×64"),
    GridSet("photo-patches-grey-16", "photo-patches", 16, 1, False, "photo patches (5000), 16×16 grey"),
)
GRID_BY_NAME = {grid_set.name: grid_set for grid_set in GRID}
