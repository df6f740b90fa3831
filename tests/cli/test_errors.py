"""Bad input through every command and the Python API: exit code 2 (or the error class), one line
on stderr naming the fix, no traceback, and nothing written, changed or lost on disk."""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from growsearch.cli.commands import main
from helpers import images

G = [{"classes": 2, "arch": "vgg11@0.125", "epochs": 1}, {"classes": 4, "arch": "vgg13@0.125", "epochs": 1}]


def _sched(**over) -> dict:
    d = {"dataset": "npz:{root}/good.npz", "seed": 0, "stages": [dict(s) for s in G]}
    d.update(over)
    return d


def _stage(i: int, **over) -> dict:
    d = _sched()
    d["stages"][i].update(over)
    return d


# id → schedule file content (a dict is JSON-dumped; a string is written as it is)
SCHEDULES: dict[str, object] = {
    "not_json": "{not json",
    "a_list": [1, 2],
    "no_stages": {"dataset": "digits"},
    "stages_not_list": _sched(stages="abc"),
    "stage_not_mapping": _sched(stages=[1, 2]),
    "stage_missing_epochs": _sched(stages=[{"classes": 4, "arch": "vgg11@0.125"}]),
    "unknown_stage_key": _stage(0, epoch=3),
    "unknown_top_key": _sched(sead=1),
    "train_unknown": _sched(train={"learning_rate": 0.1}),
    "lr_fast": _sched(train={"lr": "fast"}),
    "batch_zero": _sched(train={"batch_size": 0}),
    "momentum_big": _sched(train={"momentum": 1.5}),
    "val_fraction_big": _sched(train={"val_fraction": 0.7}),
    "weight_decay_neg": _sched(train={"weight_decay": -1}),
    "seed_text": _sched(seed="abc"),
    "seed_negative": _sched(seed=-1),
    "threads_zero": _sched(threads=0),
    "classes_shrink": _sched(
        stages=[{"classes": 3, "arch": "vgg11@0.125", "epochs": 1}, {"classes": 2, "arch": "vgg13@0.125", "epochs": 1}]
    ),
    "classes_too_many": _stage(1, classes=9),
    "classes_not_all": _sched(
        stages=[{"classes": 2, "arch": "vgg11@0.125", "epochs": 1}, {"classes": 3, "arch": "vgg13@0.125", "epochs": 1}]
    ),
    "classes_text": _stage(0, classes="2"),
    "epochs_zero": _stage(0, epochs=0),
    "epochs_fraction": _stage(0, epochs=1.5),
    "patience_zero": _stage(0, patience=0),
    "stage_lr_negative": _stage(1, lr=-1),
    "prune_big": _stage(1, prune_ratio=1.2),
    "threshold_big": _stage(1, prune_threshold=1.5),
    "threshold_and_ratio": _stage(1, prune_threshold=0.5, prune_ratio=0.5),
    "shrink_width": _sched(shrink={"widths": [1.5]}),
    "shrink_depth": _sched(shrink={"depths": ["vgg19"]}),
    "shrink_start": _sched(shrink={"widths": [0.5], "start": -0.1}),
    "shrink_not_mapping": _sched(shrink=[0.5]),
    "shrink_patience": _sched(shrink={"widths": [0.5]}, stages=[dict(G[0]), {**G[1], "patience": 2}]),
    "shrunk": _sched(shrink={"widths": [0.5], "recal_images": 8}),
    "prune_first": _stage(0, prune_ratio=0.5),
    "zero_mask_first": _stage(0, zero_mask=True),
    "zero_mask_text": _stage(1, zero_mask="yes"),
    "arch_unknown": _stage(0, arch="vgg7"),
    "arch_number": _stage(0, arch=11),
    "arch_shrinks": _sched(
        stages=[{"classes": 2, "arch": "vgg13@0.125", "epochs": 1}, {"classes": 4, "arch": "vgg11@0.125", "epochs": 1}]
    ),
    "resolution_tiny": _stage(0, resolution=4),
    "resolution_above_native": _stage(0, resolution=64),
    "resolution_decreasing": _sched(
        stages=[
            {"classes": 2, "arch": "vgg11@0.125", "epochs": 1, "resolution": 24},
            {"classes": 3, "arch": "vgg11@0.125", "epochs": 1, "resolution": 16},
            {"classes": 4, "arch": "vgg13@0.125", "epochs": 1},
        ]
    ),
    "class_order_bad": _sched(class_order=[0, 1, 1, 3]),
    "dataset_unknown": _sched(dataset="mnist"),
    "npz_missing": _sched(dataset="npz:{root}/nope.npz"),
    "npz_corrupt": _sched(dataset="npz:{root}/corrupt.npz"),
    "npz_negative_label": _sched(dataset="npz:{root}/negative.npz"),
    "npz_unseen_test_class": _sched(dataset="npz:{root}/unseen.npz"),
    "npz_nan_images": _sched(dataset="npz:{root}/nan.npz"),
    "npz_missing_array": _sched(dataset="npz:{root}/partial.npz"),
    "npz_tiny_class": _sched(dataset="npz:{root}/tinyclass.npz"),
    "samples_without_fractions": _sched(
        data_growth="samples",
        stages=[{"classes": 4, "arch": "vgg11@0.125", "epochs": 1}, {"classes": 4, "arch": "vgg13@0.125", "epochs": 1}],
    ),
    "fractions_not_increasing": _sched(
        data_growth="samples",
        stages=[
            {"classes": 4, "arch": "vgg11@0.125", "epochs": 1, "fraction": 0.6},
            {"classes": 4, "arch": "vgg13@0.125", "epochs": 1, "fraction": 0.5},
        ],
    ),
    "fraction_without_samples": _stage(0, fraction=0.5),
    "copy_cannot_copy": _sched(deepen_init="copy"),
    "new_param_lr_zero": _sched(train={"new_param_lr": 0}),
    "global_with_patience": _sched(
        train={"lr_schedule": "global"},
        stages=[
            {"classes": 2, "arch": "vgg11@0.125", "epochs": 2, "patience": 1},
            {"classes": 4, "arch": "vgg13@0.125", "epochs": 1},
        ],
    ),
    "rewarm_per_stage": _sched(train={"rewarm_epochs": 1}),
    "ssgd_strength_zero": _sched(train={"optimizer": "ssgd", "ssgd_strength": 0}),
    "ssgd_strength_without_ssgd": _stage(0, ssgd_strength=0.5),
    "stage_weight_decay_infinite": _stage(0, weight_decay=float("inf")),
    "ssgd_on_resnet": _sched(
        stages=[
            {"classes": 2, "arch": "resnet10@0.125", "epochs": 1, "optimizer": "ssgd"},
            {"classes": 4, "arch": "resnet18@0.125", "epochs": 1},
        ]
    ),
    "lr_scaling_unknown": _sched(train={"lr_scaling": "cubic"}),
    "lr_scaling_too_high": _sched(train={"lr": 50, "batch_size": 512, "lr_scaling": "linear"}),
    "compile_text": _sched(train={"compile": "yes"}),
    "compile_one": _sched(train={"compile": 1}),
    "compile_graphs": _sched(train={"compile": "reduce-overhead"}),
    "resolution_not_square": _sched(
        dataset="npz:{root}/good.npz?size=40x24",
        stages=[
            {"classes": 2, "arch": "vgg11@0.125", "epochs": 1, "resolution": 16},
            {"classes": 4, "arch": "vgg13@0.125", "epochs": 1},
        ],
    ),
    "size_w_x_h_bad": _sched(dataset="npz:{root}/good.npz?size=40x"),
    "good": _sched(),
    "good_seed_1": _sched(seed=1),
}

SPACE = "dataset: npz:{root}/good.npz\nfinal_arch: vgg13@0.125\narchs: [vgg11@0.125]\nbaseline_epochs: 2\n"
SPACES: dict[str, str] = {
    "space_bad_yaml": "dataset: [unclosed\n",
    "space_unknown_key": SPACE + "bogus: 1\n",
    "space_stages_range": SPACE + "stages: [4, 2]\n",
    "space_patience": SPACE + "baseline_patience: 3\n",
    "space_budgets": SPACE + "budgets: [4, 2]\n",
    "space_lrs": SPACE + "baseline_lrs: [0]\n",
    "space_train_lr": SPACE + "train: {lr: fast}\n",
    "space_resolution": SPACE + "resolutions: [4]\n",
    "space_resolution_above_native": SPACE + "resolutions: [16, 64]\n",
    "space_resolution_not_square": SPACE.replace("good.npz", "good.npz?size=40x24") + "resolutions: [16]\n",
    "space_good": SPACE,
}


_CUDA = __import__("torch").cuda.is_available()


def _cases() -> list[tuple[str, list[str], str]]:
    r = "{root}"
    run = lambda name: ["run", f"{r}/{name}.json", "--out", f"{r}/out_{name}", "--quiet"]  # noqa: E731
    cases = [
        ("schedule_missing", ["run", f"{r}/absent.json", "--out", f"{r}/o"], "does not exist"),
        ("not_json", run("not_json"), "cannot parse"),
        ("a_list", run("a_list"), "expected a mapping"),
        ("no_stages", run("no_stages"), "missing 'stages'"),
        ("stages_not_list", run("stages_not_list"), "must be a list"),
        ("stage_not_mapping", run("stage_not_mapping"), "must be a mapping"),
        ("stage_missing_epochs", run("stage_missing_epochs"), "missing epochs"),
        ("unknown_stage_key", run("unknown_stage_key"), "unknown key(s) epoch"),
        ("unknown_top_key", run("unknown_top_key"), "unknown key(s) sead"),
        ("train_unknown", run("train_unknown"), "unknown key(s) learning_rate"),
        ("lr_fast", run("lr_fast"), "train.lr must be a finite number in (0, 100]"),
        ("batch_zero", run("batch_zero"), "train.batch_size must be"),
        ("momentum_big", run("momentum_big"), "train.momentum must be"),
        ("val_fraction_big", run("val_fraction_big"), "train.val_fraction must be"),
        ("weight_decay_neg", run("weight_decay_neg"), "train.weight_decay must be"),
        ("seed_text", run("seed_text"), "seed must be a whole number"),
        ("seed_negative", run("seed_negative"), "seed must be a whole number"),
        ("threads_zero", run("threads_zero"), "threads must be"),
        ("classes_shrink", run("classes_shrink"), "class subsets must grow"),
        ("classes_too_many", run("classes_too_many"), "9 classes but"),
        ("classes_not_all", run("classes_not_all"), "must see all of them"),
        ("classes_text", run("classes_text"), "classes must be a whole number from 1 to"),
        ("epochs_zero", run("epochs_zero"), "epochs must be a whole number from 1 to 100000"),
        ("epochs_fraction", run("epochs_fraction"), "epochs must be a whole number from 1 to 100000"),
        ("patience_zero", run("patience_zero"), "patience must be"),
        ("stage_lr_negative", run("stage_lr_negative"), "lr must be a finite number in (0, 100]"),
        ("prune_big", run("prune_big"), "prune_ratio must be in"),
        ("prune_first", run("prune_first"), "stage 1 has none"),
        ("zero_mask_first", run("zero_mask_first"), "stage 1 grows nothing"),
        ("zero_mask_text", run("zero_mask_text"), "zero_mask must be true or false"),
        ("arch_unknown", run("arch_unknown"), "unknown arch"),
        ("arch_number", run("arch_number"), "arch must be a name"),
        ("arch_shrinks", run("arch_shrinks"), "would remove"),
        ("resolution_tiny", run("resolution_tiny"), "at least 8 px"),
        ("resolution_above_native", run("resolution_above_native"), "above"),
        ("resolution_decreasing", run("resolution_decreasing"), "never decrease"),
        ("class_order_bad", run("class_order_bad"), "class_order must be a permutation"),
        ("samples_without_fractions", run("samples_without_fractions"), "needs every stage's fraction"),
        ("fractions_not_increasing", run("fractions_not_increasing"), "must strictly increase"),
        ("fraction_without_samples", run("fraction_without_samples"), "set data_growth to samples"),
        ("copy_cannot_copy", run("copy_cannot_copy"), "use deepen_init identity"),
        ("new_param_lr_zero", run("new_param_lr_zero"), "train.new_param_lr must be"),
        ("global_with_patience", run("global_with_patience"), "patience (train to a plateau) is a per-stage rule"),
        ("rewarm_per_stage", run("rewarm_per_stage"), "set train.lr_schedule to global"),
        ("ssgd_strength_zero", run("ssgd_strength_zero"), "train.ssgd_strength must be a number in (0, 1]"),
        (
            "ssgd_strength_without_ssgd",
            run("ssgd_strength_without_ssgd"),
            "set its optimizer to ssgd or drop ssgd_strength",
        ),
        (
            "stage_weight_decay_infinite",
            run("stage_weight_decay_infinite"),
            "stage 1: weight_decay must be a number in [0, 1]",
        ),
        ("ssgd_on_resnet", run("ssgd_on_resnet"), "cannot be pruned yet: use optimizer sgd"),
        ("lr_scaling_unknown", run("lr_scaling_unknown"), "train.lr_scaling must be one of none, linear, sqrt"),
        ("lr_scaling_too_high", run("lr_scaling_too_high"), "train.lr scaled to train.batch_size must be"),
        ("compile_text", run("compile_text"), "train.compile must be false, true or reduce-overhead"),
        ("compile_one", run("compile_one"), "train.compile must be false, true or reduce-overhead"),
        (
            "compile_graphs_on_cpu",
            run("compile_graphs") + ["--device", "cpu"],
            "reduce-overhead captures CUDA graphs and needs --device cuda",
        ),
        ("resolution_not_square", run("resolution_not_square"), "resolution stages train at a square side, and npz:"),
        ("size_w_x_h_bad", run("size_w_x_h_bad"), "must be N or WxH"),
        ("dataset_unknown", run("dataset_unknown"), "unknown dataset"),
        ("npz_missing", run("npz_missing"), "no such file"),
        ("npz_corrupt", run("npz_corrupt"), "not a readable .npz"),
        ("npz_negative_label", run("npz_negative_label"), "must be ≥ 0"),
        ("npz_unseen_test_class", run("npz_unseen_test_class"), "never occur in train"),
        ("npz_nan_images", run("npz_nan_images"), "NaN"),
        ("npz_missing_array", run("npz_missing_array"), "missing arrays"),
        ("npz_tiny_class", run("npz_tiny_class"), "no validation sample"),
        ("out_is_a_file", ["run", f"{r}/good.json", "--out", f"{r}/afile", "--quiet"], "is a file"),
        ("out_holds_a_result", ["run", f"{r}/good.json", "--out", f"{r}/prev", "--quiet"], "--overwrite"),
        (
            "resume_and_overwrite",
            ["run", f"{r}/good.json", "--out", f"{r}/prev", "--resume", "--overwrite"],
            "not --overwrite",
        ),
        ("resume_a_finished_run", ["run", f"{r}/good.json", "--out", f"{r}/prev", "--resume"], "nothing to resume"),
        (
            "resume_another_schedule",
            ["run", f"{r}/good_seed_1.json", "--out", f"{r}/killed", "--resume"],
            "was not trained by this schedule",
        ),
        (
            "baseline_dir_without_frontier",
            ["run", f"{r}/good.json", "--out", f"{r}/o", "--baseline", f"{r}/prev"],
            "no frontier.json",
        ),
        (
            "run_val_fraction",
            ["run", f"{r}/good.json", "--out", f"{r}/o", "--val-fraction", "0.9"],
            "val_fraction must be",
        ),
        ("run_device_unknown", ["run", f"{r}/good.json", "--out", f"{r}/o", "--device", "tpu9"], "is not a device"),
        *(
            [
                (
                    "run_device_cuda_missing",
                    ["run", f"{r}/good.json", "--out", f"{r}/o", "--device", "cuda"],
                    "does not have",
                )
            ]
            if not _CUDA
            else []
        ),
        ("run_unknown_option", ["run", f"{r}/good.json", "--out", f"{r}/o", "--epochs", "3"], "unrecognized arguments"),
        (
            "baseline_budgets_order",
            [
                "baseline",
                "--data",
                "npz:{root}/good.npz",
                "--arch",
                "vgg11@0.125",
                "--out",
                f"{r}/b",
                "--budgets",
                "4,2",
            ],
            "strictly increasing",
        ),
        (
            "baseline_budgets_zero",
            ["baseline", "--data", "npz:{root}/good.npz", "--arch", "vgg11@0.125", "--out", f"{r}/b", "--budgets", "0"],
            "whole numbers of epochs from 1 to 100000",
        ),
        (
            "baseline_lrs",
            ["baseline", "--data", "npz:{root}/good.npz", "--arch", "vgg11@0.125", "--out", f"{r}/b", "--lrs", "-1"],
            "--lrs",
        ),
        (
            "baseline_seeds",
            ["baseline", "--data", "npz:{root}/good.npz", "--arch", "vgg11@0.125", "--out", f"{r}/b", "--seeds", "0,0"],
            "distinct",
        ),
        (
            "baseline_resizing_not_square",
            [
                "baseline",
                "--data",
                "npz:{root}/good.npz?size=40x24",
                "--arch",
                "vgg11@0.125",
                "--out",
                f"{r}/b",
                "--resolutions",
                "16,24",
                "--switch-at",
                "0.5",
            ],
            "images are not square",
        ),
        (
            "baseline_patience",
            [
                "baseline",
                "--data",
                "npz:{root}/good.npz",
                "--arch",
                "vgg11@0.125",
                "--out",
                f"{r}/b",
                "--patience",
                "3",
            ],
            "no fixed budget",
        ),
        ("baseline_no_arch", ["baseline", "--data", "npz:{root}/good.npz", "--out", f"{r}/b"], "needs a reference"),
        (
            "baseline_arch_unknown",
            ["baseline", "--data", "npz:{root}/good.npz", "--arch", "vgg7", "--out", f"{r}/b"],
            "unknown arch",
        ),
        (
            "baseline_spec_from_missing",
            [
                "baseline",
                "--data",
                "npz:{root}/good.npz",
                "--arch",
                "vgg11@0.125",
                "--spec-from",
                f"{r}/nope",
                "--out",
                f"{r}/b",
            ],
            "does not exist",
        ),
        (
            "baseline_out_file",
            [
                "baseline",
                "--data",
                "npz:{root}/good.npz",
                "--arch",
                "vgg11@0.125",
                "--out",
                f"{r}/afile",
                "--epochs",
                "1",
            ],
            "is a file",
        ),
        (
            "baseline_budgets_out_file",
            [
                "baseline",
                "--data",
                "npz:{root}/good.npz",
                "--arch",
                "vgg11@0.125",
                "--out",
                f"{r}/afile",
                "--budgets",
                "1,2",
            ],
            "is a file",
        ),
        ("robustness_missing_dir", ["robustness", f"{r}/nope"], "does not exist"),
        ("robustness_no_checkpoints", ["robustness", f"{r}/resultonly"], "no stage checkpoints"),
        ("robustness_eps", ["robustness", f"{r}/prev", "--eps", "-0.1"], "FGSM epsilons"),
        ("robustness_draws", ["robustness", f"{r}/prev", "--draws", "0"], "--draws"),
        ("robustness_weights", ["robustness", f"{r}/prev", "--weights", "1,2,3"], "one weight per stage"),
        ("robustness_rule", ["robustness", f"{r}/prev", "--rule", "bogus"], "invalid choice"),
        ("robustness_crafted_pickle", ["robustness", f"{r}/evil"], "not a loadable growsearch checkpoint"),
        ("robustness_stale_checkpoint", ["robustness", f"{r}/stale"], "did not write (stage3.pt)"),
        (
            "export_storage_nonsense",
            ["export", "--storage", "nonsense", "--study", "x", "-o", f"{r}/best.json"],
            "no Optuna journal file at nonsense",
        ),
        ("search_space_missing", ["search", f"{r}/nope.yaml", "--out", f"{r}/s"], "no space file"),
        (
            "search_trials_zero",
            ["search", f"{r}/space_good.yaml", "--out", f"{r}/s", "--trials", "0"],
            "--trials must be",
        ),
        (
            "search_confirm_too_many",
            ["search", f"{r}/space_good.yaml", "--out", f"{r}/s", "--trials", "3", "--confirm", "4"],
            "--confirm 4 asks for more candidates than the search's 3 trials",
        ),
        (
            "search_confirm_seeds_zero",
            ["search", f"{r}/space_good.yaml", "--out", f"{r}/s", "--confirm-seeds", "0"],
            "--confirm-seeds must be a whole number ≥ 1",
        ),
        ("threshold_big", run("threshold_big"), "prune_threshold must be in (0, 1]"),
        ("threshold_and_ratio", run("threshold_and_ratio"), "keep one"),
        ("shrink_width", run("shrink_width"), "shrink.widths: every width must be a fraction in (0, 1]"),
        ("shrink_depth", run("shrink_depth"), "depth rung vgg19 [2, 2, 4, 4, 4] is deeper than the network"),
        ("shrink_start", run("shrink_start"), "shrink.start must be a share of the last stage in [0, 1]"),
        ("shrink_not_mapping", run("shrink_not_mapping"), "shrink must be a mapping"),
        ("shrink_patience", run("shrink_patience"), "patience makes them unknown"),
        ("subnets_no_family", ["subnets", f"{r}/prev"], "holds no subnets"),
        ("robustness_members_no_family", ["robustness", f"{r}/prev", "--members", "subnets"], "holds no subnets"),
        ("subnets_missing_run", ["subnets", f"{r}/absent"], "does not exist"),
        (
            "subnets_unknown",
            ["subnets", f"{r}/shrunk", "--spec", "vgg16:0.5", "-o", f"{r}/cut"],
            "the family has no subnet vgg16:0.5",
        ),
        (
            "subnets_bad_width",
            ["subnets", f"{r}/shrunk", "--spec", "vgg11:1.5", "-o", f"{r}/cut"],
            "width fraction must be in (0, 1]",
        ),
        ("subnets_no_out", ["subnets", f"{r}/shrunk", "--spec", "vgg11:0.5"], "give -o DIR"),
        (
            "subnets_macs_zero",
            ["subnets", f"{r}/shrunk", "--max-macs", "0", "-o", f"{r}/cut"],
            "--max-macs must be a positive",
        ),
        ("subnets_macs_small", ["subnets", f"{r}/shrunk", "--max-macs", "10", "-o", f"{r}/cut"], "raise --max-macs"),
        (
            "subnets_out_taken",
            ["subnets", f"{r}/shrunk", "--spec", "full:0.5", "-o", f"{r}/prev"],
            "already holds result.json",
        ),
        (
            "search_val_fraction",
            ["search", f"{r}/space_good.yaml", "--out", f"{r}/s", "--val-fraction", "0.7"],
            "val_fraction must be",
        ),
        (
            "search_fgsm_objective_alone",
            ["search", f"{r}/space_good.yaml", "--out", f"{r}/s", "--fgsm-objective"],
            "need --fgsm-eps",
        ),
        (
            "search_family_no_shrink",
            ["search", f"{r}/space_good.yaml", "--out", f"{r}/s", "--cost", "family"],
            "has no shrink block",
        ),
        ("search_out_file", ["search", f"{r}/space_good.yaml", "--out", f"{r}/afile"], "is a file"),
        (
            "search_resume_mistyped_storage",
            ["search", f"{r}/space_good.yaml", "--out", f"{r}/s", "--storage", f"sqlite:///{r}/typo.db", "--resume"],
            "nothing to resume: no database at",
        ),
        *[
            (name, ["search", f"{r}/{name}.yaml", "--out", f"{r}/s"], msg)
            for name, msg in (
                ("space_bad_yaml", "cannot parse YAML"),
                ("space_unknown_key", "unknown key(s) bogus"),
                ("space_stages_range", "min 4 is above max 2"),
                ("space_patience", "delete baseline_patience"),
                ("space_budgets", "strictly increasing"),
                ("space_lrs", "baseline_lrs"),
                ("space_train_lr", "train.lr must be"),
                ("space_resolution", "at least 8 px"),
                ("space_resolution_above_native", "above npz"),
                ("space_resolution_not_square", "resolution stages train at a square side"),
            )
        ],
    ]
    return cases


CASES = _cases()


def _tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _npz(path: Path, **over) -> None:
    xtr, ytr = images(48, 4, 32, 3, 0)
    xte, yte = images(24, 4, 32, 3, 1)
    arrays = {"x_train": xtr, "y_train": ytr, "x_test": xte, "y_test": yte, **over}
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})


class _Evil:
    def __reduce__(self):  # what a crafted checkpoint would run on load, were it not refused
        return (print, ("this must never run",))


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("errors")
    _npz(root / "good.npz")
    y = images(48, 4, 32, 3, 0)[1].copy()
    y[-1] = -1
    _npz(root / "negative.npz", y_train=y)
    _npz(root / "unseen.npz", y_test=np.arange(24) % 5)
    _npz(root / "nan.npz", x_train=np.full((48, 32, 32, 3), np.nan, dtype=np.float32))
    _npz(root / "partial.npz", y_test=None)
    _npz(
        root / "tinyclass.npz", x_train=images(63, 4, 32, 3, 0)[0], y_train=np.repeat([0, 1, 2, 3], [20, 20, 20, 3])
    )  # class 3: 3 images
    (root / "corrupt.npz").write_bytes(b"PK\x03\x04 truncated")
    (root / "afile").write_text("not a folder")
    for name, content in SCHEDULES.items():
        text = content if isinstance(content, str) else json.dumps(content)
        (root / f"{name}.json").write_text(text.replace("{root}", str(root)))
    for name, text in SPACES.items():
        (root / f"{name}.yaml").write_text(text.replace("{root}", str(root)))
    assert main(["run", str(root / "good.json"), "--out", str(root / "prev"), "--quiet"]) == 0
    assert main(["run", str(root / "shrunk.json"), "--out", str(root / "shrunk"), "--quiet"]) == 0
    shutil.copytree(root / "prev", root / "killed")  # a run killed after stage 1
    for f in ("stage2.pt", "result.json", "curve.png"):
        (root / "killed" / f).unlink()
    (root / "resultonly").mkdir()
    shutil.copy(root / "prev" / "result.json", root / "resultonly" / "result.json")
    shutil.copytree(root / "prev", root / "evil")
    with open(root / "evil" / "stage2.pt", "wb") as f:
        pickle.dump(_Evil(), f)
    shutil.copytree(root / "prev", root / "stale")  # an earlier, longer run's stage3.pt left behind
    shutil.copy(root / "prev" / "stage2.pt", root / "stale" / "stage3.pt")
    return root


@pytest.mark.parametrize("case_id,argv,msg", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    root: Path, case_id: str, argv: list[str], msg: str, capsys
) -> None:
    args = [a.replace("{root}", str(root)) for a in argv]
    before = _tree(root)
    capsys.readouterr()
    assert main(args) == 2, case_id
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1, err
    assert msg in err and err.startswith("growsearch") and "Traceback" not in err, err
    assert "this must never run" not in captured.out
    assert _tree(root) == before  # nothing written, changed or lost


def test_the_table_is_as_long_as_promised() -> None:
    assert len(CASES) >= 60


# --- the Python API raises the same error classes, under one root ---------------------------


def test_api_errors_share_one_root_and_the_cli_messages(tmp_path: Path) -> None:
    import growsearch
    from growsearch import GrowsearchError, Schedule, Stage
    from growsearch.data.dataset import DataError, create_dataset
    from growsearch.data.split import with_validation
    from growsearch.plan.schedule import ScheduleError
    from growsearch.search.space import SpaceError, load_space
    from growsearch.train.baseline import run_frontier
    from growsearch.train.frontier import FrontierError, load_frontier

    calls = [
        (lambda: growsearch.run_schedule("schedule.json"), ScheduleError, "expected a growsearch.Schedule"),
        (lambda: growsearch.run_schedule(Schedule("digits", "abc")), ScheduleError, "stages must be a list"),
        (
            lambda: growsearch.run_schedule(Schedule("digits", [Stage("5", "vgg11", 1)])),
            ScheduleError,
            "classes must be a whole number from 1 to",
        ),
        (lambda: Schedule(3, [Stage(10, "vgg11", 1)]).validate(), ScheduleError, "dataset must be a dataset name"),
        (lambda: create_dataset(3), DataError, "a dataset name is a string"),
        (lambda: with_validation(create_dataset("digits"), 0.7), DataError, "val_fraction must be"),
        (lambda: run_frontier("digits", ["vgg11@0.125"], [2, 1]), FrontierError, "strictly increasing"),
        (lambda: load_frontier(tmp_path), FrontierError, "no frontier.json"),
        (lambda: load_space(3), SpaceError, "a space is a name"),
    ]
    for call, cls, msg in calls:
        with pytest.raises(cls, match=msg) as e:
            call()
        assert isinstance(e.value, GrowsearchError) and isinstance(e.value, ValueError)
        assert len(str(e.value).splitlines()) == 1


def test_os_errors_on_the_paths_given_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    sched = tmp_path / "s.json"
    sched.write_text('{"dataset": "digits", "stages": [{"classes": 10, "arch": "vgg11@0.125", "epochs": 1}]}')
    long_name = tmp_path / ("x" * 300)  # longer than any file system's name limit
    assert main(["run", str(sched), "--out", str(long_name / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and "name too long" in err.lower()


@pytest.mark.parametrize("where", ["schedule", "option", "argparse"])
def test_a_huge_value_echoed_by_an_error_is_cut_short_keeping_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture, where: str
) -> None:
    huge = "a" * 2_000_000
    sched = tmp_path / "s.json"
    sched.write_text(json.dumps({"dataset": f"npz:/nope/{huge}", "stages": G}))
    argv = {
        "schedule": ["run", str(sched), "--out", str(tmp_path / "o")],
        "option": ["baseline", "--data", f"npz:/nope/{huge}", "--arch", "vgg11@0.125", "--out", str(tmp_path / "o")],
        "argparse": ["search", "--trials", huge],
    }[where]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and len(err) < 1000, err[:300]
    assert "characters]..." in err and err.startswith("growsearch")
    fix = {"schedule": "another path", "option": "another path", "argparse": "--help"}[where]
    assert fix in err.rsplit("characters]...", 1)[1]  # what follows the value (the fix) is kept


def test_reading_a_mistyped_storage_creates_nothing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    url = f"sqlite:///{tmp_path / 'typo.db'}"
    assert main(["export", "--storage", url, "--study", "s", "-o", str(tmp_path / "best")]) == 2
    assert "no database at" in capsys.readouterr().err
    assert not (tmp_path / "typo.db").exists() and not (tmp_path / "best").exists()


def test_a_bug_shows_its_traceback_and_asks_to_be_reported(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from growsearch.cli import commands

    def broken(args):
        raise ZeroDivisionError("a growsearch bug")

    monkeypatch.setattr(commands, "_cmd_export", broken)
    assert main(["export", "--storage", "sqlite:///x.db", "--study", "s", "-o", "out.json"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "this is a bug in growsearch" in err


def test_search_joins_the_cluster_ray_address_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import socket

    from helpers import tiny_space

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")
    assert main(["search", str(tiny_space(tmp_path)), "--out", str(tmp_path / "out"), "--trials", "2"]) == 2
    err = capsys.readouterr().err
    assert f"cannot reach the Ray cluster at 127.0.0.1:{port}" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()  # refused before anything was written, no local Ray started instead


def test_resuming_a_search_with_an_edited_space_names_what_changed(tmp_path: Path, capsys) -> None:
    import optuna

    from helpers import tiny_space

    space = tiny_space(tmp_path)
    from growsearch.search.space import load_space

    stored = json.loads(json.dumps(load_space(space).to_dict()))
    out = tmp_path / "out"
    out.mkdir()
    study = optuna.create_study(study_name="space", storage=f"sqlite:///{out / 'study.db'}")
    study.set_user_attr("space", stored)
    space.write_text(space.read_text().replace("tolerance: 0.5", "tolerance: 0.2"))
    assert main(["search", str(space), "--out", str(out), "--resume"]) == 2
    assert "another space (tolerance changed)" in capsys.readouterr().err
