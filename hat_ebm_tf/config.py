"""Experiment configs: YAML/JSON data files, validated, unknown keys rejected, free of TensorFlow.

Config dicts stop here: the training job and the commands take the frozen
dataclasses built by ``load_config``. A config file is parsed as data
(``yaml.safe_load``), never executed. Nothing here imports TensorFlow, so that
``hat-ebm train`` names a bad config before TensorFlow's start-up.
"""

import dataclasses
import json
import math
import os
import types
import typing
from pathlib import Path

import yaml

from hat_ebm_tf import recipe
from hat_ebm_tf.choices import HAT_TABLE, STRATEGIES
from hat_ebm_tf.errors import ConfigError, DataError, LimitError
from hat_ebm_tf.modes import get_mode
from hat_ebm_tf.sampler_config import LangevinConfig, check_known_keys, check_positive
from hat_ebm_tf.sources import NAMED_KINDS, parse_source, split_rows


def _shipped_config_dir():
    """The shipped ``*.yaml`` configs: the repository's ``training/configs/``.

    An install (``pip install .``) maps that folder into the package as
    ``hat_ebm_tf/configs/`` (``setup.py``); a checkout on the path (or an
    editable install) reads it where it is.
    """
    here = Path(__file__).resolve().parent
    installed = here / "configs"
    return installed if installed.is_dir() else here.parent / "training" / "configs"


CONFIG_DIR = _shipped_config_dir()
INT64_MAX = 2**63 - 1
SEED_MAX = 2**32 - 1  # NumPy's global seed (keras.utils.set_random_seed) is a uint32
MAX_CONFIG_BYTES = 1 << 20
_TYPE_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string", list: "a list"}


def _check_numbers(value, key):
    """Refuse non-finite floats, integers beyond int64, and booleans inside lists (recursively)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{key}={value!r} must be finite")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > INT64_MAX:
        raise ConfigError(f"{key}={value!r} is beyond the int64 range")
    if isinstance(value, list):
        for item in value:
            if isinstance(item, bool):
                raise ConfigError(f"{key}={value!r} must hold numbers, not true/false")
            _check_numbers(item, key)


def _check_type(value, annotation, key):
    """Refuse a value of another type than the field's annotation (YAML gives ``true`` for a bool, not an int).

    An integer is accepted for a float; a boolean only where the field is one.
    """
    union = typing.get_origin(annotation) in (types.UnionType, typing.Union)
    kinds = {typing.get_origin(a) or a for a in (typing.get_args(annotation) if union else (annotation,))}
    if not all(isinstance(kind, type) for kind in kinds):  # e.g. Any or Literal: the field's own check decides
        ok = True
    elif value is None:
        ok = type(None) in kinds
    elif isinstance(value, bool):
        ok = bool in kinds
    elif isinstance(value, int):
        ok = bool(kinds & {int, float})
    elif isinstance(value, float):
        ok = float in kinds
    else:
        ok = any(isinstance(value, kind) for kind in kinds - {int, float, bool, type(None)})
    if not ok:
        names = [_TYPE_NAMES.get(kind, "null" if kind is type(None) else kind.__name__) for kind in kinds]
        raise ConfigError(f"{key}={value!r} must be {' or '.join(sorted(names))}")
    _check_numbers(value, key)


def _from_dict(cls, values, where):
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(values).__name__}")
    check_known_keys(values, cls, where)
    hints = typing.get_type_hints(cls)
    for name, value in values.items():
        _check_type(value, hints[name], f"{where}: {name}")
    try:
        return cls(**values)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{where}: {err}") from err


def _require(condition, message):
    if not condition:
        raise ConfigError(message)


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where the training images come from.

    Attributes:
        source: ``digits`` (scikit-learn's bundled 8×8 digits),
            ``tfds:NAME[:SPLIT]`` (cifar10, celeb_a, imagenet2012,
            svhn_cropped, cifar100; never downloaded), a folder of PNG/JPEG
            images, or a ``.npz``/``.npy`` file of uint8 images (or floats in [-1, 1]).
        image_size: model resolution.
        channels: image channels (1 or 3).
        data_dir: TFDS data directory.
        random_crop: ``[min_scale, max_scale, min_ratio, max_ratio]`` of a
            random resized crop, or null for a centre crop.
        flip: random horizontal flips.
    """

    source: str = "digits"
    image_size: int = 16
    channels: int = 1
    data_dir: str | None = None
    random_crop: list[float] | None = None
    flip: bool = False

    def __post_init__(self):
        try:
            source = self.to_source()
        except DataError as err:
            raise ConfigError(f"data: {err}") from err
        _require(
            source.kind not in NAMED_KINDS or split_rows(source.split)[0] in ("train", "all"),
            f"data.source={self.source!r}: training never sees the held-out images, which the quality report "
            f"compares samples with; use '{source.kind}' (the train split, e.g. '{source.kind}:train[:200]') or "
            f"'{source.kind}:all'",
        )

    def to_source(self):
        """The ``hat_ebm_tf.data.DataSource`` this config names."""
        crop = None if self.random_crop is None else tuple(self.random_crop)
        return parse_source(
            self.source, self.image_size, self.channels, data_dir=self.data_dir, random_crop=crop, flip=self.flip
        )


@dataclasses.dataclass(frozen=True)
class NetworkConfig:
    """The networks: widths (the reference's ``ngf``), generator type and latent size.

    Attributes:
        hat_width: width of the hat network.
        generator_width: width of the generator (or of the retrofit
            encoder/decoder).
        generator: ``sngan`` (latent vector of ``latent_dim``) or ``decoder``
            (the retrofit autoencoder's decoder, latent grid
            ``[latent_hw, latent_hw, 1]``).
        latent_dim: SN-GAN latent size.
        latent_hw: retrofit latent grid size (the image is twice as large).
        out_factor: generator output scale (2.0 synthesis/retrofit, 1.0 refine).
        generator_checkpoint: the frozen generator of refine/retrofit: a
            reference checkpoint prefix (``*.ckpt``), a generator ``.keras``
            file, or an autoencoder run's ``model.keras`` (its decoder).
        latent_prior: retrofit: ``standard`` (the chains start at
            ``z ~ N(0, I)``, as the reference's) or ``fitted`` (the decoder
            behind the Gaussian fitted to the autoencoder's codes of its training
            images, ``hat_ebm_tf.networks.PriorDecoder``; needs an autoencoder
            run's ``model.keras``).
        prior_components: autoencoder: the Gaussians of the prior fitted to
            its codes at the end of the run (1: one Gaussian; more: a mixture).
    """

    hat_width: int = 256
    generator_width: int = 256
    generator: str = "sngan"
    latent_dim: int = 128
    latent_hw: int = 16
    out_factor: float = 2.0
    generator_checkpoint: str | None = None
    latent_prior: str = "standard"
    prior_components: int = 1

    def __post_init__(self):
        _require(
            self.generator in ("sngan", "decoder"),
            f"networks.generator={self.generator!r}: expected 'sngan' or 'decoder'",
        )
        _require(
            self.latent_prior in ("standard", "fitted"),
            f"networks.latent_prior={self.latent_prior!r}: expected 'standard' or 'fitted'",
        )
        for name in ("hat_width", "generator_width", "latent_dim", "latent_hw", "prior_components"):
            value = getattr(self, name)
            _require(isinstance(value, int) and value > 0, f"networks.{name}={value!r} must be a positive integer")
        check_positive("networks.out_factor", self.out_factor)


def _check_learning_rate(name, value):
    """A learning rate is a float, or the reference's piecewise-constant ``[[lr, from_step], ...]``."""

    def number(x):
        return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)

    if number(value):
        check_positive(f"training.{name}", value)
        return
    ok = isinstance(value, list) and value and all(isinstance(p, list) and len(p) == 2 for p in value)
    ok = ok and all(number(x) for p in value for x in p)
    _require(ok, f"training.{name}={value!r} must be a float or [[lr, from_step], ...]")
    steps = [p[1] for p in value]
    _require(steps[0] == 0 and steps == sorted(steps), f"training.{name}: steps {steps} must start at 0 and increase")
    for rate, step in value:
        check_positive(f"training.{name}: the learning rate from step {step}", rate)


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """Optimisation and run-control settings (reference key names in brackets).

    Attributes:
        steps: training steps (``num_training_steps``).
        steps_per_epoch: steps per Keras epoch; a checkpoint is written at the
            end of every epoch.
        batch_size: global batch size (split over replicas).
        hat_learning_rate: Adam learning rate of the hat network (and of the
            autoencoder): a float or ``[[lr, from_step], ...]`` (``ebm_lr_info``).
        generator_learning_rate: the same for the generator (``gen_lr_info``).
        ema_momentum: weight EMA (``ebm_opt_decay``), or null for none.
        data_epsilon: std of the noise added to data (autoencoder: latent noise).
        gen_loss_factor: cooperative generator loss weight
            (``gen_loss_factor_coop``), or the autoencoder's MSE factor.
        bank_size: persistent bank size (``persistent_size``).
        max_grad_norm: clip each hat gradient to this norm (``max_grad_norm``
            when ``clip_ebm_grad``), or null.
        strategy: ``auto``, ``cpu``, ``mirrored``, ``multi_worker`` or ``tpu``.
        tpu: TPU name or address for ``tpu``.
        mixed_precision: null, ``mixed_bfloat16`` or ``mixed_float16``; the
            Langevin state and energies stay float32.
        jit_sampler: XLA-compile the Langevin sampler (helps on GPU).
        checkpoints_to_keep: the last K checkpoints are kept.
        max_energy_gap: the watchdog acts when the epoch's running mean of
            ``|energy_diff|`` exceeds it (null: no bound); non-finite values always
            stop it.
        on_divergence: ``stop``, or ``rollback`` (restore the last checkpoint,
            scale the learning rates by ``rollback_lr_factor``, continue).
        rollback_lr_factor: learning-rate factor of a rollback.
        max_rollbacks: rollbacks before giving up.
        tensorboard_every: write TensorBoard scalars and a sample grid every N
            steps (null: no TensorBoard).
        drift_weight: weight of the drift regularisation (0: the reference's
            loss), which holds the sampler's mean residual drift step at the
            samples at ``drift_target`` (``hat_ebm_tf.losses.drift_penalty``).
        drift_target: that step, in the units of ``sampler.max_residual_norm``.
    """

    steps: int = 50000
    steps_per_epoch: int = 500
    batch_size: int = 128
    hat_learning_rate: float | list = 1e-4
    generator_learning_rate: float | list = 1e-4
    ema_momentum: float | None = 0.9999
    data_epsilon: float = 1e-3
    gen_loss_factor: float = 1000.0
    bank_size: int = 10000
    max_grad_norm: float | None = None
    strategy: str = "auto"
    tpu: str | None = None
    mixed_precision: str | None = None
    jit_sampler: bool = False
    checkpoints_to_keep: int = 3
    # Far above any healthy run's |energy_diff| (the grid of `hat-ebm grid` stays below 50 at every step; runs
    # that ran away passed 1e6), so it acts long before inf and never on a healthy run.
    max_energy_gap: float | None = 1000.0
    on_divergence: str = "stop"
    rollback_lr_factor: float = 0.5
    max_rollbacks: int = 3
    tensorboard_every: int | None = None
    drift_weight: float = 0.0
    drift_target: float = 0.25

    def __post_init__(self):
        for name in ("steps", "steps_per_epoch", "batch_size", "bank_size", "checkpoints_to_keep", "max_rollbacks"):
            value = getattr(self, name)
            _require(
                isinstance(value, int) and not isinstance(value, bool) and 0 < value <= INT64_MAX,
                f"training.{name}={value!r} must be a positive integer",
            )
        for name in ("data_epsilon", "gen_loss_factor", "drift_weight", "drift_target"):
            check_positive(f"training.{name}", getattr(self, name), zero=True)
        for name in ("max_grad_norm", "max_energy_gap"):
            check_positive(f"training.{name}", getattr(self, name), none="null")
        _check_learning_rate("hat_learning_rate", self.hat_learning_rate)
        _check_learning_rate("generator_learning_rate", self.generator_learning_rate)
        check_positive("training.ema_momentum", self.ema_momentum, none="null")
        _require(
            self.ema_momentum is None or self.ema_momentum < 1.0,
            f"training.ema_momentum={self.ema_momentum!r} must be in (0, 1) or null",
        )
        _require(
            self.strategy in STRATEGIES, f"training.strategy={self.strategy!r}: expected one of {list(STRATEGIES)}"
        )
        _require(
            self.mixed_precision in (None, "mixed_bfloat16", "mixed_float16"),
            f"training.mixed_precision={self.mixed_precision!r}: expected null, mixed_bfloat16 or mixed_float16",
        )
        _require(
            self.on_divergence in ("stop", "rollback"),
            f"training.on_divergence={self.on_divergence!r}: expected 'stop' or 'rollback'",
        )
        check_positive("training.rollback_lr_factor", self.rollback_lr_factor)
        _require(
            self.rollback_lr_factor < 1,
            f"training.rollback_lr_factor={self.rollback_lr_factor!r} must be in (0, 1)",
        )
        _require(
            self.tensorboard_every is None or (isinstance(self.tensorboard_every, int) and self.tensorboard_every > 0),
            f"training.tensorboard_every={self.tensorboard_every!r} must be a positive integer or null",
        )


@dataclasses.dataclass(frozen=True)
class EvaluationConfig:
    """How samples are drawn and scored: at the end of the run, and during training.

    Attributes:
        num_samples: images drawn with ``sampler`` at the end of the run.
        batch_size: chains run at once.
        sampler: ``LangevinConfig`` overrides of the evaluation sampler.
        every: every this many steps, score ``quality_samples`` images drawn
            with ``sampler`` (EMA weights, the end-of-run seed) with the
            quality report (``hat_ebm_tf.quality.report``), into
            ``history.json``, ``training_curve.png`` and TensorBoard; null:
            never.
        quality_samples: images scored at each of those evaluations (≥ 2).
    """

    num_samples: int = 1000
    batch_size: int = 250
    sampler: LangevinConfig | None = None
    every: int | None = None
    quality_samples: int = 300

    def __post_init__(self):
        _require(
            isinstance(self.num_samples, int) and self.num_samples > 0,
            f"evaluation.num_samples={self.num_samples!r} must be a positive integer",
        )
        _require(
            isinstance(self.batch_size, int) and self.batch_size > 0,
            f"evaluation.batch_size={self.batch_size!r} must be a positive integer",
        )
        _require(
            self.every is None or (isinstance(self.every, int) and self.every > 0),
            f"evaluation.every={self.every!r} must be a positive integer or null",
        )
        _require(
            isinstance(self.quality_samples, int) and self.quality_samples >= 2,
            f"evaluation.quality_samples={self.quality_samples!r} must be an integer >= 2",
        )


def check_memory(parts, limit_gb, raise_how):
    """Refuse an allocation whose estimate exceeds a limit, before anything is allocated.

    Args:
        parts: ``{what: bytes}``, e.g. ``{"banks (training.bank_size=10000)": 1.3e8}``.
        limit_gb: the limit in GB (1e9 bytes).
        raise_how: how to raise the limit, e.g. ``"raise limits.memory_gb in the config"``.

    Raises:
        LimitError: naming the parts, the estimate, the limit and ``raise_how``.
    """
    total = sum(parts.values())
    if total > limit_gb * 1e9:
        items = ", ".join(f"{what}: {size / 1e9:.3g} GB" for what, size in parts.items())
        raise LimitError(
            f"estimated memory {total / 1e9:.3g} GB ({items}) exceeds the limit of {limit_gb:g} GB; "
            f"lower the sizes, or {raise_how}"
        )


def first_feature_map_size(image_size, hat_width):
    """Values in the hat network's first feature map of one image: its largest activation."""
    return image_size**2 * (hat_width // HAT_TABLE[image_size][0][0])


def chain_bytes(image_shape, latent_shape, hat_width):
    """An estimate of the memory one running Langevin chain takes, in bytes (float32 values).

    The hat network's activations kept for the input gradient come to about 4
    first feature maps, and the chain's state with its gradients and the
    generator's output to about 10 images: within 10 % of the peak memory
    measured per chain on CPU, for 16×16×1 and 32×32×3 models of widths 8 to
    64, in batches of 1000 to 8000 chains.

    Args:
        image_shape: ``(H, W, C)``.
        latent_shape: the generator's latent shape.
        hat_width: the hat network's width.
    """
    pixels, latent = math.prod(image_shape), math.prod(latent_shape)
    return 4 * (4 * first_feature_map_size(image_shape[0], hat_width) + 10 * pixels + 2 * latent)


@dataclasses.dataclass(frozen=True)
class LimitsConfig:
    """Bounds on sizes, checked when a config loads, before anything is allocated.

    They keep a mistyped size from exhausting the machine's memory; raise
    them in the config's ``limits`` section on a machine with room.

    Attributes:
        memory_gb: bound (GB) on the estimated memory of the persistent
            banks, the hat network's first feature map for one training
            batch, and the evaluation samples: a lower bound of what
            training needs.
        width: bound on ``networks.hat_width`` and ``networks.generator_width``.
    """

    memory_gb: float = 16.0
    width: int = 4096

    def __post_init__(self):
        check_positive("limits.memory_gb", self.memory_gb)
        _require(isinstance(self.width, int) and self.width > 0, f"limits.width={self.width!r} must be > 0")


def _check_limits(config):
    """Refuse widths and memory estimates beyond ``config.limits`` (a ``LimitError`` naming the key)."""
    limits, nets, data, train = config.limits, config.networks, config.data, config.training
    for name in ("hat_width", "generator_width"):
        value = getattr(nets, name)
        if value > limits.width:
            raise LimitError(
                f"networks.{name}={value} exceeds limits.width={limits.width}; "
                f"set limits.width (e.g. {value}) in the config if this is intended"
            )
    pixels = data.image_size**2 * data.channels
    latent = nets.latent_hw**2 if nets.generator == "decoder" else nets.latent_dim
    first_map = first_feature_map_size(data.image_size, nets.hat_width)
    parts = {
        f"one training batch's first hat feature map (training.batch_size={train.batch_size})": 4
        * train.batch_size
        * first_map,
        f"evaluation samples (evaluation.num_samples={config.evaluation.num_samples})": 4
        * config.evaluation.num_samples
        * pixels,
    }
    if get_mode(config.mode).uses_banks:
        parts[f"persistent banks (training.bank_size={train.bank_size})"] = 4 * train.bank_size * (latent + pixels)
    check_memory(parts, limits.memory_gb, f"raise limits.memory_gb (now {limits.memory_gb:g}) in the config")


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """A whole experiment, as read from one config file."""

    name: str
    mode: str
    seed: int
    data: DataConfig
    networks: NetworkConfig
    sampler: LangevinConfig
    training: TrainingConfig
    evaluation: EvaluationConfig
    limits: LimitsConfig = LimitsConfig()

    def __post_init__(self):
        mode = get_mode(self.mode)
        _require(
            isinstance(self.seed, int) and not isinstance(self.seed, bool) and 0 <= self.seed <= SEED_MAX,
            f"seed={self.seed!r} must be an integer in [0, {SEED_MAX}]",
        )
        _require(
            self.data.image_size in HAT_TABLE,
            f"data.image_size={self.data.image_size}: the networks support {sorted(HAT_TABLE)}",
        )
        _check_limits(self)
        _require(
            self.networks.generator == mode.generator,
            f"mode={self.mode!r} needs networks.generator={mode.generator!r}",
        )
        mode.check_sampler(self.sampler)
        train = self.training
        _require(
            not mode.uses_banks or train.bank_size >= train.batch_size,
            f"training.bank_size={train.bank_size} is smaller than training.batch_size={train.batch_size}: each "
            f"training step updates a batch of distinct rows of the persistent banks (mode {self.mode!r})",
        )
        if self.evaluation.every is not None:
            _require(
                mode.hat_ebm,
                f"evaluation.every={self.evaluation.every} scores a Hat EBM's samples; mode {self.mode!r} draws "
                "none: remove it",
            )

    def to_dict(self):
        return dataclasses.asdict(self)


_SECTIONS = {
    "data": DataConfig,
    "networks": NetworkConfig,
    "sampler": LangevinConfig,
    "training": TrainingConfig,
    "limits": LimitsConfig,
}


def _merged(base, overrides):
    """``base`` with ``overrides`` applied, mapping into mapping (a key's value replaces the base's otherwise)."""
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            value = _merged(merged[key], value)
        merged[key] = value
    return merged


def _from_recipe(values, where):
    """A config with ``base: recipe``: the recipe derived for its ``data`` (``hat_ebm_tf.recipe``), overridden by
    every other key it gives."""
    _require(values["base"] == "recipe", f"{where}: base={values['base']!r}: the one base is 'recipe'")
    data = values.get("data")
    _require(
        isinstance(data, dict) and isinstance(data.get("source"), str),
        f"{where}: base: recipe derives the config from the data: give data.source (and optionally "
        "data.image_size, data.channels)",
    )
    training = values.get("training") if isinstance(values.get("training"), dict) else {}
    facts = recipe.inspect_source(data["source"], data.get("data_dir"))
    derived = recipe.derive(
        facts,
        image_size=data.get("image_size"),
        channels=data.get("channels"),
        steps=training.get("steps"),
        seed=values.get("seed", 0),
        data_dir=data.get("data_dir"),
    )
    return _merged(derived, {key: value for key, value in values.items() if key != "base"})


def parse_config(values, where="config"):
    """Validate a config mapping into an ``ExperimentConfig``.

    A mapping whose ``base`` is ``recipe`` starts from the recipe that
    ``hat-ebm train --data`` derives for its ``data`` and overrides the keys
    it gives (``hat_ebm_tf.recipe``).

    Raises:
        ConfigError: naming the unknown key or bad value.
        DataError: (``base: recipe``) data that cannot be inspected.
    """
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a mapping at the top level, got {type(values).__name__}")
    if "base" in values:
        values = _from_recipe(values, where)
    check_known_keys(values, ExperimentConfig, where)
    sections = {key: _from_dict(cls, values.get(key, {}), f"{where}: {key}") for key, cls in _SECTIONS.items()}
    evaluation = values.get("evaluation", {})
    _require(isinstance(evaluation, dict), f"{where}: evaluation must be a mapping")
    evaluation = dict(evaluation)
    if evaluation.get("sampler") is not None:
        evaluation["sampler"] = merged_sampler(sections["sampler"], evaluation["sampler"], where)
    evaluation = _from_dict(EvaluationConfig, evaluation, f"{where}: evaluation")
    try:
        return ExperimentConfig(
            name=str(values.get("name", "experiment")),
            mode=values.get("mode", "synthesis"),
            seed=values.get("seed", 0),
            evaluation=evaluation,
            **sections,
        )
    except ConfigError as err:  # LimitError stays a LimitError
        raise type(err)(f"{where}: {err}") from err


def load_config(path):
    """Read and validate a YAML or JSON config file (by name, or a path).

    Args:
        path: a file path, or the name of a shipped config (``digits``).
    """
    path = Path(path)
    if not path.suffix and not path.exists():
        path = CONFIG_DIR / f"{path}.yaml"
    if not path.is_file():
        shipped = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
        raise ConfigError(f"config file {os.fspath(path)!r} not found; shipped configs are {shipped}")
    return parse_config(_read(path), where=os.fspath(path))


class _NoAliasLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses aliases (``*name``).

    A config has no use for them, and nested aliases expand to exponentially
    large data from a few hundred bytes (an "alias bomb").
    """

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise ConfigError(
                f"config file {mark.name!r}, line {mark.line + 1}: YAML aliases (*name) are not allowed in configs"
            )
        return super().compose_node(parent, index)


def _read(path):
    """The data of a YAML or JSON file (a ConfigError if it does not parse)."""
    where = os.fspath(path)
    size = path.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise LimitError(f"config file {where!r} has {size} bytes; a config is at most {MAX_CONFIG_BYTES}")
    try:
        text = path.read_text()
        if path.suffix == ".json":
            return json.loads(text)
        loader = _NoAliasLoader(text)
        loader.name = where
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except (yaml.YAMLError, json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        raise ConfigError(f"config file {where!r} is not valid {path.suffix[1:].upper() or 'YAML'}: {err}") from err


def merged_sampler(sampler, overrides, where):
    """``sampler`` with a config's ``evaluation.sampler`` overrides applied.

    Args:
        sampler: ``LangevinConfig``.
        overrides: mapping of ``LangevinConfig`` fields; unknown keys are refused.
        where: the config file, for messages.
    """
    _require(isinstance(overrides, dict), f"{where}: evaluation.sampler must be a mapping of sampler overrides")
    return _from_dict(LangevinConfig, {**sampler.to_dict(), **overrides}, f"{where}: evaluation.sampler")


def evaluation_sampler(path, sampler):
    """The sampler of a run's evaluation: ``sampler`` with the run's ``evaluation.sampler`` applied.

    Args:
        path: a run directory's ``config.yaml``.
        sampler: the trained model's ``LangevinConfig`` (the model's own
            settings, rather than the file's ``sampler`` section, are what
            the overrides apply to).

    Returns:
        ``LangevinConfig``: ``sampler`` itself when the file has no
        ``evaluation.sampler``.
    """
    path = Path(path)
    where = os.fspath(path)
    values = _read(path)
    _require(isinstance(values, dict), f"{where}: expected a mapping at the top level, got {type(values).__name__}")
    evaluation = values.get("evaluation") or {}
    _require(isinstance(evaluation, dict), f"{where}: evaluation must be a mapping")
    overrides = evaluation.get("sampler")
    return sampler if overrides is None else merged_sampler(sampler, overrides, where)
