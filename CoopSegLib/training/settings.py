"""What a training run does: the settings behind ``python Training/train.py``, read from YAML and ``--set`` overrides.

The defaults are the embedded default run (the synthetic phantom, a few minutes on a CPU); the files in
Training/configs/ override them. Every value is checked, with its type, before any data is read or any weight is
made, and a problem names the key (and the file it came from).

>>> settings = TrainingSettings.from_mapping({"train": {"steps": 50}}, overrides=["data.size=64"])
>>> settings.train.steps, settings.data.size, settings.method.variant
(50, 64, 'cooperative')
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence, Tuple, Union

from CoopSegLib.bundle import STORAGE_DTYPES
from CoopSegLib.cooperative.config import VARIANTS, CooperativeConfig
from CoopSegLib.data.augmentation import AUGMENTATIONS, BACKENDS, augmentation_kind
from CoopSegLib.data.geometry import MODEL_SPACING
from CoopSegLib.data.slices import EMPTY_SLICE_POLICIES
from CoopSegLib.errors import ConfigError
from CoopSegLib.networks.codec import size_divisor
from CoopSegLib.networks.config import NetworkConfig
from CoopSegLib.runtime import PRECISIONS, resolve_device
from CoopSegLib.weights import default_bundle, has_default_bundle
from CoopSegLib.training.schedule import SCHEDULES

DATA_FORMATS = ("phantom", "acdc", "mnms", "nnunet", "pairs", "packed")  # packed: Training/gpu_table1.py pack
LABEL_CODES = ("auto", "canonical", "acdc", "mnms")  # data.label_codes: evaluation.coding's names, or detect them
# The codes of the formats whose files have one coding; nnunet and pairs files may hold any (data.label_codes).
FORMAT_CODES = {"phantom": "canonical", "packed": "canonical", "acdc": "acdc", "mnms": "mnms"}
SHIPPED_BUNDLE = "shipped"  # train.init_from: start from the shipped model (CoopSegLib/weights)
SPLITS = ("paper", "all", "stratified", "inherit")


@dataclass(frozen=True)
class MethodSettings:
    """The method: a variant of CooperativeConfig (cooperative, standard, the Table 2 ablations) plus overrides."""

    variant: str = "cooperative"
    overrides: Tuple[Tuple[str, Any], ...] = ()  # any CooperativeConfig field, e.g. learning_rate

    def config(self) -> CooperativeConfig:
        return CooperativeConfig.variant(self.variant, **dict(self.overrides))


@dataclass(frozen=True)
class DataSettings:
    format: str = "phantom"  # one of DATA_FORMATS
    root: Optional[str] = None  # folder (acdc, mnms, nnunet) or CSV file (pairs); --data sets it
    # How the label files code the structures, one of LABEL_CODES; null: the format's own (FORMAT_CODES), for
    # nnunet the names in dataset.json, else (and for pairs) auto: detected by the starting model's predictions.
    label_codes: Optional[str] = None
    frames: Tuple[str, ...] = ("ED", "ES")
    # "paper": n_train subjects drawn by split_seed from a pool, + n_validation; "all": every subject, n_validation
    # of them held out at random; "stratified" (ACDC): every subject, validation_per_group of each group held out;
    # "inherit": the training and validation subjects train.init_from's bundle records (a continued run's split).
    split: str = "all"
    split_seed: Optional[int] = None  # None: train.seed
    n_train: int = 10
    n_validation: int = 2
    validation_per_group: int = 2  # split "stratified" only
    pool_size: int = 40
    phantom_subjects: int = 10  # synthetic subjects made for format "phantom" (training + validation)
    phantom_seed: int = 0
    # The default run halves the paper's resolution (2 x 1.36719 mm, 96 x 96: the same field of view) so a CPU
    # trains it in minutes; the paper configurations use 1.36719 mm and 192.
    spacing_mm: float = 2 * MODEL_SPACING
    size: int = 96
    empty_slices: str = "replace"  # one of EMPTY_SLICE_POLICIES (the authors: replace)
    # Training crops of crop x crop pixels holding the labelled heart at a random offset (None: the whole slice);
    # validation and inference always see the whole field of view.
    crop: Optional[int] = None
    # One of AUGMENTATIONS: "paper" (true), "strong" (the paper's + generic intensity transforms), "none" (false).
    augmentation: Union[bool, str] = True
    augmentation_backend: str = "torch"


@dataclass(frozen=True)
class TrainSettings:
    steps: Optional[int] = 300  # optimiser steps; exactly one of steps and epochs is set
    epochs: Optional[int] = None  # passes over the training slices (the paper: 600)
    batch_size: int = 8  # slices drawn per step (per process); with paired, each also appears un-augmented
    paired: bool = True  # the paper's batch: the drawn slices augmented, then the same slices un-augmented
    seed: int = 0
    schedule: str = "constant"  # learning-rate schedule, one of SCHEDULES (training/schedule.py)
    warmup_steps: int = 0  # linear warm-up from 0 to method.learning_rate over these steps
    final_lr_fraction: float = 0.01  # cosine: the rate at the last step, as a fraction of method.learning_rate
    ema_decay: Optional[float] = None  # e.g. 0.999: validate and ship an exponential moving average of the weights
    ema_warmup: bool = False  # a lower decay early on (cooperative/weight_average.py): for runs from scratch
    init_from: Optional[str] = None  # a model bundle (or "shipped") whose weights start a new run (not on --resume)
    device: str = "auto"  # auto, cpu, cuda, cuda:N
    precision: str = "auto"  # auto (bf16 where it is fast), bf16, fp32
    channels_last: Optional[bool] = None  # None: on (runtime.default_channels_last); false: contiguous NCHW
    compile: bool = False
    workers: Union[int, str] = "auto"  # DataLoader worker processes; auto: 4 on CUDA, 0 (main process) on CPU


@dataclass(frozen=True)
class ValidationSettings:
    every: int = 100  # steps between validations on the held-out subjects (and at the end); 0: only at the end
    images: bool = True  # TensorBoard pictures of a training batch and its hard examples at each validation


@dataclass(frozen=True)
class CheckpointSettings:
    every: int = 100  # steps between checkpoints (and at the end, and on Ctrl-C)
    bundle_storage: str = "float32"  # weights of the final model.coopseg: float32, or float16 (half the size)


@dataclass(frozen=True)
class LogSettings:
    every: int = 10  # steps between loss rows in losses.csv / TensorBoard (averaged over those steps)
    tensorboard: bool = True


@dataclass(frozen=True)
class TrainingSettings:
    name: str = "phantom_default"
    description: str = "The embedded default: a few minutes of cooperative training on the synthetic phantom."
    output_root: str = "runs"
    method: MethodSettings = field(default_factory=MethodSettings)
    data: DataSettings = field(default_factory=DataSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    validation: ValidationSettings = field(default_factory=ValidationSettings)
    checkpoint: CheckpointSettings = field(default_factory=CheckpointSettings)
    log: LogSettings = field(default_factory=LogSettings)

    @classmethod
    def from_mapping(cls, values: Optional[Mapping[str, Any]] = None, overrides: Iterable[str] = (),
                     source: str = "settings") -> "TrainingSettings":
        """Defaults, then ``values`` (a parsed YAML document), then ``key.sub=value`` overrides, all checked."""
        merged = _merge({}, values or {}, source)
        for override in overrides:
            key, value = parse_override(override)
            merged = _merge(merged, _nest(key, value), f"--set {override}")
            # A run length given on the command line replaces the file's, whichever unit the file used.
            other = {"train.steps": "epochs", "train.epochs": "steps"}.get(key)
            if other and value is not None and isinstance(merged.get("train"), Mapping):
                merged["train"] = {**merged["train"], other: None}
        settings = _build(cls, merged, source, "")
        settings.check(source)
        return settings

    @classmethod
    def from_yaml(cls, path: Union[str, Path], overrides: Iterable[str] = ()) -> "TrainingSettings":
        return cls.from_mapping(read_yaml(path), overrides, source=str(path))

    def to_dict(self) -> Dict[str, Any]:
        """Plain values in the YAML layout (method overrides flattened into the method section)."""
        out = _plain(self)
        method = out.pop("method")
        out["method"] = {"variant": method["variant"], **{k: _plain(v) for k, v in self.method.overrides}}
        return out

    def replace(self, **sections: Any) -> "TrainingSettings":
        return dataclasses.replace(self, **sections)

    @property
    def split_seed(self) -> int:
        return self.train.seed if self.data.split_seed is None else self.data.split_seed

    def starting_bundle(self) -> Optional[Path]:
        """The bundle folder whose weights start a new run (``train.init_from``; "shipped": the shipped model)."""
        start = self.train.init_from
        return None if start is None else default_bundle() if start == SHIPPED_BUNDLE else Path(start)

    def check(self, source: str = "settings") -> None:
        """Cross-field checks (types and single values were checked while building)."""
        data, train = self.data, self.train
        problems = []
        choices = (("data.format", data.format, DATA_FORMATS), ("data.split", data.split, SPLITS),
                   ("data.empty_slices", data.empty_slices, EMPTY_SLICE_POLICIES),
                   ("data.augmentation_backend", data.augmentation_backend, BACKENDS),
                   ("train.precision", train.precision, PRECISIONS),
                   ("train.schedule", train.schedule, SCHEDULES),
                   ("checkpoint.bundle_storage", self.checkpoint.bundle_storage, tuple(STORAGE_DTYPES)))
        for key, value, allowed in choices:
            if value not in allowed:
                problems.append(f"{key} must be one of {', '.join(allowed)}, not {value!r}")
        if augmentation_kind(data.augmentation) is None:
            problems.append(f"data.augmentation must be one of {', '.join(AUGMENTATIONS)} (or true/false), "
                            f"not {data.augmentation!r}")
        if train.warmup_steps < 0:
            problems.append(f"train.warmup_steps must not be negative, not {train.warmup_steps}")
        if not 0.0 <= train.final_lr_fraction <= 1.0:
            problems.append(f"train.final_lr_fraction must lie in [0, 1], not {train.final_lr_fraction}")
        if train.ema_decay is not None and not 0.0 < train.ema_decay < 1.0:
            problems.append(f"train.ema_decay must lie strictly between 0 and 1 (or be null), not {train.ema_decay}")
        if train.init_from == SHIPPED_BUNDLE and not has_default_bundle():
            problems.append("train.init_from: shipped, but this install has no shipped model (CoopSegLib/weights)")
        elif train.init_from not in (None, SHIPPED_BUNDLE) and not Path(train.init_from).is_dir():
            problems.append(f"train.init_from: no model bundle folder at {train.init_from}")
        if data.split == "stratified" and data.format != "acdc":
            problems.append(f"data.split stratified needs ACDC's groups (data.format acdc), not {data.format!r}")
        if data.split == "inherit" and train.init_from is None:
            problems.append("data.split inherit keeps the split of train.init_from's bundle; set train.init_from")
        if data.label_codes is not None and data.label_codes not in LABEL_CODES:
            problems.append(f"data.label_codes must be one of {', '.join(LABEL_CODES)} (or null), "
                            f"not {data.label_codes!r}")
        elif data.label_codes not in (None, FORMAT_CODES.get(data.format, data.label_codes)):
            problems.append(f"data.label_codes: data.format {data.format} files are coded {FORMAT_CODES[data.format]}, "
                            f"not {data.label_codes}; list files coded otherwise in a pairs CSV (data.format pairs)")
        if data.format != "phantom" and not data.root:
            problems.append(f"data.root is needed for data.format {data.format!r} (pass --data DIR)")
        if (train.steps is None) == (train.epochs is None):
            problems.append("set exactly one of train.steps and train.epochs (the other to null)")
        positive = [("train.steps", train.steps), ("train.epochs", train.epochs),
                    ("train.batch_size", train.batch_size),
                    ("data.size", data.size), ("data.spacing_mm", data.spacing_mm), ("data.n_train", data.n_train),
                    ("data.phantom_subjects", data.phantom_subjects), ("log.every", self.log.every),
                    ("checkpoint.every", self.checkpoint.every), ("data.pool_size", data.pool_size),
                    ("data.validation_per_group", data.validation_per_group)]
        problems += [f"{key} must be positive, not {value}" for key, value in positive if value is not None
                     and not value > 0]
        problems += [f"{key} must not be negative, not {value}" for key, value in
                     (("data.n_validation", data.n_validation), ("validation.every", self.validation.every))
                     if value < 0]
        if isinstance(train.workers, str) and train.workers != "auto" or isinstance(train.workers, int) \
                and train.workers < 0:
            problems.append(f"train.workers must be 'auto' or a number >= 0, not {train.workers!r}")
        if set(data.frames) - {"ED", "ES"} and data.format in ("acdc", "mnms", "phantom", "packed"):
            problems.append(f"data.frames must be ED and/or ES for {data.format}, not {list(data.frames)}")
        if not train.device.lower().startswith(("auto", "cpu", "cuda", "gpu")):
            problems.append(f"train.device must be auto, cpu, cuda or cuda:N (or gpu), not {train.device!r}")
        else:
            try:  # here, not when training starts: CUDA on a machine without it is a setting problem like the others
                resolve_device(train.device)
            except (RuntimeError, ValueError) as error:
                problems.append(f"train.device: {error}")
        try:
            widths = self.method.config().network.widths  # the method's own checks name the bad key
        except ConfigError as error:
            problems.append(f"method: {error}")
        else:
            divisor = size_divisor(widths)
            if data.size % divisor:
                problems.append(f"data.size must be a multiple of {divisor} for widths {list(widths)}, not {data.size}")
            if data.crop is not None and (data.crop % divisor or not 0 < data.crop <= data.size):
                problems.append(f"data.crop must be a multiple of {divisor} between {divisor} and data.size "
                                f"({data.size}), not {data.crop}")
        if problems:
            raise ConfigError(f"{source}: " + "; ".join(problems))


def read_yaml(path: Union[str, Path], _seen: Tuple[Path, ...] = ()) -> Dict[str, Any]:
    """A YAML mapping from ``path``; a missing or malformed file is a ConfigError naming it.

    ``extends: OTHER`` (a file name in the same folder, ``.yaml`` optional) starts from OTHER's settings, so the
    Table 2 ablations state only what differs from the cooperative configuration.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: configuration file not found")
    try:
        values = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a mapping of sections (data:, train:, ...), got {type(values).__name__}")
    base = values.pop("extends", None)
    if base is None:
        return values
    base_path = path.parent / (str(base) if str(base).endswith((".yaml", ".yml")) else f"{base}.yaml")
    if base_path.resolve() in _seen or base_path.resolve() == path.resolve():
        raise ConfigError(f"{path}: 'extends: {base}' makes a cycle")
    return _merge(read_yaml(base_path, (*_seen, path.resolve())), values, str(path))


def parse_override(text: str) -> Tuple[str, Any]:
    """``"train.steps=50"`` -> ("train.steps", 50); the value is read as YAML (numbers, true/false, null, lists)."""
    import yaml

    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. train.steps=1000")
    try:
        return key.strip(), yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError:
        return key.strip(), value


def _nest(key: str, value: Any) -> Dict[str, Any]:
    parts = key.split(".")
    nested: Dict[str, Any] = {parts[-1]: value}
    for part in reversed(parts[:-1]):
        nested = {part: nested}
    return nested


def _merge(base: Dict[str, Any], update: Mapping[str, Any], source: str) -> Dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if not isinstance(key, str):
            raise ConfigError(f"{source}: setting names must be text, got {key!r}")
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value, source)
        else:
            merged[key] = value
    return merged


def _build(cls: type, values: Any, source: str, prefix: str) -> Any:
    """Instantiate settings dataclass ``cls`` from a mapping, coercing and checking each value's type."""
    if not isinstance(values, Mapping):
        raise ConfigError(f"{source}: {prefix.rstrip('.') or 'the document'} must be a mapping of settings")
    if cls is MethodSettings:
        values = dict(values)
        variant = values.pop("variant", MethodSettings.variant)
        if variant not in VARIANTS:
            raise ConfigError(f"{source}: method.variant must be one of {', '.join(VARIANTS)}, not {variant!r}")
        # Flat keys, as CooperativeConfig.from_dict reads them: the architecture's and the objective's.
        known = {f.name: f for part in (NetworkConfig, CooperativeConfig) for f in dataclasses.fields(part)
                 if f.name != "network"}
        overrides = []
        for key, value in values.items():
            if key not in known:
                raise ConfigError(f"{source}: unknown setting method.{key}; known: variant, {', '.join(known)}")
            hint = type(known[key].default)
            overrides.append((key, _coerce(value, Tuple[Any, ...] if hint is tuple else hint, f"method.{key}",
                                           source)))
        return MethodSettings(variant, tuple(overrides))
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ConfigError(f"{source}: unknown setting {prefix}{unknown[0]}; known in "
                          f"{prefix.rstrip('.') or 'the top level'}: {', '.join(names)}")
    kwargs = {}
    for name in names:
        if name not in values:
            continue
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = _build(hint, values[name], source, f"{prefix}{name}.")
        else:
            kwargs[name] = _coerce(values[name], hint, prefix + name, source)
    for name in names:  # sections not mentioned still get their defaults
        hint = hints[name]
        if name not in kwargs and dataclasses.is_dataclass(hint):
            kwargs[name] = hint()
    return cls(**kwargs)


def _coerce(value: Any, hint: Any, key: str, source: str) -> Any:
    """``value`` as type ``hint`` (int, float, bool, str, Optional[...], Union[...], Tuple[X, ...])."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Union:
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, option, key, source)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[-1])
    if origin in (tuple, Tuple) or hint is tuple:
        if isinstance(value, str) or not isinstance(value, Sequence):
            value = [value]
        item = args[0] if args else Any
        return tuple(_coerce(v, item, key, source) for v in value)
    if hint is Any:
        return value
    expected = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}.get(hint, str(hint))
    problem = ConfigError(f"{source}: {key} must be {expected}, not {value!r}")
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise problem
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise problem
        try:
            number = float(value)
            if number != int(number):
                raise ValueError(number)
        except (ValueError, OverflowError):
            raise problem from None
        return int(number)
    if hint is float:
        if isinstance(value, bool):
            raise problem
        try:
            return float(value)  # YAML reads 1e-4 as text; accept it
        except (TypeError, ValueError):
            raise problem from None
    if hint is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise problem
    raise problem


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value
