"""Training settings: YAML files, --set overrides, type checks and messages that name the key and file."""

from pathlib import Path

import pytest

from CoopSegLib.errors import ConfigError
from CoopSegLib.training.settings import TrainingSettings, parse_override

CONFIGS = Path(__file__).resolve().parents[1] / "Training" / "configs"


def test_defaults_are_the_phantom_run_and_overrides_apply_with_types():
    settings = TrainingSettings.from_mapping({}, ["train.steps=12", "method.learning_rate=1e-3", "data.size=64",
                                                  "method.widths=[8,16,32]", "train.channels_last=false"])
    assert settings.data.format == "phantom" and settings.data.root is None
    assert settings.train.steps == 12 and isinstance(settings.train.steps, int)
    config = settings.method.config()
    assert config.learning_rate == pytest.approx(1e-3)  # YAML reads 1e-3 as text; it becomes a float
    assert config.network.widths == (8, 16, 32) and settings.train.channels_last is False


def test_round_trip_through_to_dict_keeps_every_value():
    settings = TrainingSettings.from_mapping({"method": {"variant": "separate", "temperature": 3}},
                                             ["data.frames=[ES]", "train.workers=2"])
    again = TrainingSettings.from_mapping(settings.to_dict())
    assert again == settings


@pytest.mark.parametrize("values, message", [
    ({"train": {"stepz": 5}}, "unknown setting train.stepz"),
    ({"train": {"steps": "many"}}, "train.steps must be a whole number"),
    ({"train": {"steps": 2.5}}, "train.steps must be a whole number"),
    ({"train": {"paired": "yes"}}, "train.paired must be true or false"),
    ({"method": {"variant": "fancy"}}, "method.variant must be one of"),
    ({"method": {"lr": 0.1}}, "unknown setting method.lr"),
    ({"method": {"learning_rate": -1}}, "learning_rate must be positive"),
    ({"data": {"format": "acdc"}}, "data.root is needed"),
    ({"data": {"format": "dicom", "root": "x"}}, "data.format must be one of"),
    ({"data": {"size": 100}}, "data.size must be a multiple of 16"),
    ({"train": {"steps": 10, "epochs": 3}}, "exactly one of train.steps and train.epochs"),
    ({"train": {"batch_size": 0}}, "train.batch_size must be positive"),
    ({"checkpoint": {"bundle_storage": "bfloat16"}}, "checkpoint.bundle_storage must be one of float32, float16"),
    ({"train": {"workers": "many"}}, "train.workers must be"),
    ({"train": 5}, "train must be a mapping"),
    ({"data": {"label_codes": "itk"}}, "data.label_codes must be one of auto, canonical, acdc, mnms"),
    ({"data": {"format": "acdc", "root": "x", "label_codes": "canonical"}},
     "data.label_codes: data.format acdc files are coded acdc, not canonical"),
])
def test_bad_settings_name_the_key(values, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        TrainingSettings.from_mapping(values, source="my.yaml")


def test_errors_name_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  steps: [1, 2\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        TrainingSettings.from_yaml(path)
    path.write_text("train:\n  batch_sise: 4\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: unknown setting train.batch_sise"):
        TrainingSettings.from_yaml(path)
    with pytest.raises(ConfigError, match="missing.yaml: configuration file not found"):
        TrainingSettings.from_yaml(tmp_path / "missing.yaml")


def test_override_syntax_and_run_length_units():
    assert parse_override("data.root=/a b/c") == ("data.root", "/a b/c")
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_override("train.steps")
    # The file counts epochs; --set train.steps replaces that length instead of clashing with it.
    settings = TrainingSettings.from_yaml(CONFIGS / "paper_acdc10_cooperative.yaml", ["data.root=x", "train.steps=7"])
    assert settings.train.steps == 7 and settings.train.epochs is None


def test_shipped_configs_are_the_papers_rows():
    paper = {"paper_acdc10_cooperative": "cooperative", "paper_acdc10_standard": "standard",
             "paper_acdc10_no_targeted": "no_targeted", "paper_acdc10_shared_code_a": "shared_code_a",
             "paper_acdc10_shared_code_b": "shared_code_b", "paper_acdc10_separate": "separate"}
    # The CPU-budget runs behind the shipped model and docs/table1.md: shorter, smaller batches, larger steps.
    short = {"acdc_full": "cooperative", "acdc_v2": "cooperative", "acdc_v3": "cooperative",
             "acdc_v4": "cooperative", "acdc_v5": "cooperative", "acdc_v6_fresh": "cooperative",
             "acdc_v6_code24": "cooperative", "short_acdc10_cooperative": "cooperative",
             "short_acdc10_standard": "standard", "own_data": "cooperative"}
    assert {p.stem for p in CONFIGS.glob("*.yaml")} == set(paper) | set(short)
    for name, variant in {**paper, **short}.items():
        settings = TrainingSettings.from_yaml(CONFIGS / f"{name}.yaml", ["data.root=/data"])
        assert settings.name == name and settings.method.variant == variant
        assert settings.data.spacing_mm == pytest.approx(1.36719) and settings.data.size == 192
        assert settings.train.paired and settings.data.augmentation
        if name in paper:
            assert settings.train.batch_size == 10  # 10 + 10 = the paper's batch of 20
            assert settings.method.config().learning_rate == pytest.approx(1e-4)
            assert settings.data.split == "paper" and settings.data.n_train == 10 and settings.train.epochs == 600
    full = TrainingSettings.from_yaml(CONFIGS / "acdc_full.yaml", ["data.root=/data"])
    assert full.data.split == "all" and full.data.n_validation > 0
    # v2 continues v1's split with the budgeted recipe: same subjects, crops, strong augmentation, cosine, EMA.
    v2 = TrainingSettings.from_yaml(CONFIGS / "acdc_v2.yaml", ["data.root=/data"])
    assert (v2.data.split, v2.data.n_validation, v2.split_seed) == (full.data.split, full.data.n_validation,
                                                                   full.split_seed)
    assert (v2.data.crop, v2.data.augmentation, v2.train.schedule) == (128, "strong", "cosine")
    assert v2.train.ema_decay is not None
    # v3 is v2's recipe at length with larger crops (more background in view for the fast network).
    v3 = TrainingSettings.from_yaml(CONFIGS / "acdc_v3.yaml", ["data.root=/data"])
    assert (v3.data.split, v3.data.n_validation, v3.split_seed) == (v2.data.split, v2.data.n_validation, v2.split_seed)
    assert (v3.data.crop, v3.data.augmentation, v3.train.schedule) == (160, "strong", "cosine")
    # v4 (the shipped model) is v3's recipe, longer; only the length differs.
    v4 = TrainingSettings.from_yaml(CONFIGS / "acdc_v4.yaml", ["data.root=/data"]).to_dict()
    v3_settings = v3.to_dict()
    assert v4["train"].pop("steps") == 3000 and v3_settings["train"].pop("steps") == 900
    for settings in (v4, v3_settings):
        settings.pop("name"), settings.pop("description")
    assert v4 == v3_settings
    # v5 restarts v4's recipe at half its peak rate.
    v5 = TrainingSettings.from_yaml(CONFIGS / "acdc_v5.yaml", ["data.root=/data"])
    assert v5.method.config().learning_rate == pytest.approx(1e-4) and (v5.data.crop, v5.train.steps) == (160, 4000)
    # v6_fresh is v4's recipe from scratch on a split by ACDC group, planned longer; code24 drops one down block.
    v6 = TrainingSettings.from_yaml(CONFIGS / "acdc_v6_fresh.yaml", ["data.root=/data"]).to_dict()
    assert (v6["data"].pop("split"), v6["data"].pop("validation_per_group"), v6["train"].pop("steps")) == \
        ("stratified", 2, 8000) and v6["train"]["init_from"] is None
    assert v6["train"].pop("ema_warmup") is True and v4["train"].pop("ema_warmup") is False  # from scratch
    assert v4["data"].pop("split") == "all" and v4["data"].pop("validation_per_group") == 2
    for settings in (v6,):
        settings.pop("name"), settings.pop("description")
    assert v6 == v4
    code24 = TrainingSettings.from_yaml(CONFIGS / "acdc_v6_code24.yaml", ["data.root=/data"]).to_dict()
    assert code24["method"].pop("widths") == [16, 32, 64, 128]
    fresh = TrainingSettings.from_yaml(CONFIGS / "acdc_v6_fresh.yaml", ["data.root=/data"]).to_dict()
    for settings in (code24, fresh):
        settings.pop("name"), settings.pop("description")
    assert code24 == fresh
    # own_data: the shipped model's recipe (v4's) on one's own pairs, fine-tuned from it, label codes detected.
    own = TrainingSettings.from_yaml(CONFIGS / "own_data.yaml", ["data.root=/data"])
    assert (own.data.format, own.data.label_codes, own.train.init_from) == ("pairs", "auto", "shipped")
    assert (own.data.crop, own.data.augmentation, own.train.schedule, own.train.ema_decay) == (
        v3.data.crop, v3.data.augmentation, v3.train.schedule, v3.train.ema_decay)
    assert own.method.config().network == v3.method.config().network  # the shipped model's networks: it fits
    assert own.method.config().learning_rate == pytest.approx(1e-4)  # a warm restart, as v5
    # Table 1's two rows differ only in the method.
    pair = [TrainingSettings.from_yaml(CONFIGS / f"short_acdc10_{v}.yaml", ["data.root=/data"]).to_dict()
            for v in ("cooperative", "standard")]
    for row in pair:
        row.pop("name"), row.pop("description"), row["method"].pop("variant")
    assert pair[0] == pair[1]


def test_extends_cycle_is_reported(tmp_path):
    (tmp_path / "a.yaml").write_text("extends: b\n")
    (tmp_path / "b.yaml").write_text("extends: a\n")
    with pytest.raises(ConfigError, match="makes a cycle"):
        TrainingSettings.from_yaml(tmp_path / "a.yaml")
