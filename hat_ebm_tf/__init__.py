"""Hat EBM (Hill, Nijkamp, Mitchell, Pang, Zhu; NeurIPS 2022) in TensorFlow/Keras 3.

Importing the package registers every serializable layer and model, so
``keras.saving.load_model`` can read ``.keras`` files written by it.
"""

from hat_ebm_tf.autoencoder import Autoencoder
from hat_ebm_tf.layers import DownBlock, SphereProjection, UpBlock
from hat_ebm_tf.model import MODES, HatEBM
from hat_ebm_tf.networks import Generator, HatNetwork, RetrofitDecoder, RetrofitEncoder
from hat_ebm_tf.sampler import LangevinConfig, LangevinResult, langevin

__version__ = "0.1.0"

__all__ = [
    "MODES",
    "Autoencoder",
    "DownBlock",
    "Generator",
    "HatEBM",
    "HatNetwork",
    "LangevinConfig",
    "LangevinResult",
    "RetrofitDecoder",
    "RetrofitEncoder",
    "SphereProjection",
    "UpBlock",
    "langevin",
]
