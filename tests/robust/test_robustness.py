"""Robustness: MI vote and no-decision arithmetic on hand-made logits, Foolbox FGSM, ablation,
and the ``growsearch robustness`` command on real (tiny) runs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from growsearch.model.arch import create_model
from growsearch.robust.attack import fgsm_accuracy, foolbox_model
from growsearch.robust.members import Member, RobustnessError
from growsearch.robust.robustness import robustness_report
from growsearch.robust.sweeps import ablate
from growsearch.robust.vote import detection_rates, mutual_inference, no_decision, tnr_at_fnr


def _onehot(rows: list[int], k: int, strength: float = 5.0) -> torch.Tensor:
    """Logits whose argmax is ``rows[i]``, softmax confidence near 1 for strength 5+."""
    out = torch.zeros(len(rows), k)
    out[torch.arange(len(rows)), torch.tensor(rows)] = strength
    return out


# members of a 5 → 7 → 10 class run; output j of member m predicts CLS[m][j]
CLS = [[4, 1, 7, 5, 3], [4, 1, 7, 5, 3, 9, 0], [4, 1, 7, 5, 3, 9, 0, 8, 6, 2]]


def test_mi_partial_members_cannot_outvote_a_class_they_never_saw() -> None:
    # sample 0: the final net says 8 (output 7), the two partial members (which never saw 8) say 3
    # sample 1: the final net (attacked) says 3, both partial members say 1
    logits = [_onehot([4, 1], 5), _onehot([4, 1], 7), _onehot([7, 4], 10)]
    known = mutual_inference(logits, CLS, [1.0, 1.0, 1.0], num_classes=10)
    plain = mutual_inference(logits, CLS, [1.0, 1.0, 1.0], num_classes=10, rule="plain")
    assert known.tolist() == [8, 1]  # 8: 1/1 of the members that know it; 3: 2/3
    assert plain.tolist() == [3, 1]  # raw weights 2 vs 1


def test_mi_weights_and_tie_break() -> None:
    # two full-class members disagree: the heavier weight wins
    logits = [_onehot([0], 3), _onehot([2], 3)]
    assert mutual_inference(logits, [[0, 1, 2]] * 2, [0.4, 0.6], num_classes=3).tolist() == [2]
    assert mutual_inference(logits, [[0, 1, 2]] * 2, [0.6, 0.4], num_classes=3).tolist() == [0]
    # equal weights: the tie goes to the larger weighted probability
    sure, unsure = _onehot([0], 3, 6.0), _onehot([2], 3, 1.0)
    assert mutual_inference([sure, unsure], [[0, 1, 2]] * 2, [1.0, 1.0], num_classes=3).tolist() == [0]
    sure, unsure = _onehot([2], 3, 6.0), _onehot([0], 3, 1.0)
    assert mutual_inference([unsure, sure], [[0, 1, 2]] * 2, [1.0, 1.0], num_classes=3).tolist() == [2]
    # a member's output j is mapped through its class list
    assert mutual_inference([_onehot([1], 2)], [[7, 3]], [1.0], num_classes=8).tolist() == [3]


def test_no_decision_single_model_thresholds() -> None:
    lg = torch.log(torch.tensor([[0.9, 0.1], [0.6, 0.4]]))
    dec, ab = no_decision([lg], [[5, 6]], [0.0, 0.7, 0.95])
    assert dec.tolist() == [[5, 5, 5], [5, 5, 5]]
    assert ab.tolist() == [[False, False, True], [False, True, True]]


def test_no_decision_mi_needs_every_member_that_knows_the_class() -> None:
    # sample 0: partial members disagree with the final net's 8, but never saw 8: decide 8
    # sample 1: the final net says 3, a partial member that knows 3 says 1: abstain
    # sample 2: all say 4, but the 5-class member is unsure (uniform): abstain above δ = 0.2
    logits = [
        torch.stack([_onehot([4], 5)[0], _onehot([1], 5)[0], torch.zeros(5)]),
        _onehot([4, 4, 0], 7),
        _onehot([7, 4, 0], 10),
    ]
    dec, ab = no_decision(logits, CLS, [0.0, 0.5])
    assert dec[:, 0].tolist() == [8, 3, 4]
    assert ab.tolist() == [[False, False], [True, True], [False, True]]
    _, ab_plain = no_decision(logits, CLS, [0.0], rule="plain")
    assert ab_plain[:, 0].tolist() == [True, True, False]


def test_tnr_fnr_on_a_hand_made_confusion() -> None:
    # 4 clean inputs, 4 adversarial ones (true class 0), 3 thresholds
    ab_clean = torch.tensor([[0, 0, 1], [0, 0, 1], [0, 1, 1], [0, 0, 0]], dtype=torch.bool)
    dec_adv = torch.tensor([[0, 0, 0], [2, 2, 2], [2, 2, 2], [1, 1, 1]])
    ab_adv = torch.tensor([[0, 0, 0], [0, 1, 1], [0, 0, 1], [0, 0, 1]], dtype=torch.bool)
    fnr, tnr = detection_rates(ab_clean, dec_adv, ab_adv, torch.zeros(4, dtype=torch.long))
    assert fnr == [0.0, 0.25, 0.75]
    assert tnr == [0.25, 0.5, 1.0]  # correct (1st) or abstained
    assert tnr_at_fnr(fnr, tnr, 0.05) == 0.25
    assert tnr_at_fnr(fnr, tnr, 0.25) == 0.5
    assert tnr_at_fnr([0.3, 0.5], [0.9, 1.0], 0.1) is None


MEAN, STD = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)


def test_foolbox_sees_the_model_in_eval_mode_with_the_training_normalisation() -> None:
    model, _ = create_model("vgg11@0.125", 4, 3)
    model.train()
    fmodel = foolbox_model(model, MEAN, STD)
    assert not model.training
    assert tuple(fmodel.bounds) == (0, 1)
    x = torch.rand(3, 3, 32, 32)
    ref = model((x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1))
    torch.testing.assert_close(fmodel(x), ref, rtol=1e-5, atol=1e-5)


def _members(seed: int = 0) -> list[Member]:
    torch.manual_seed(seed)
    small, _ = create_model("vgg11@0.125", 2, 3)
    full, _ = create_model("vgg11@0.125", 4, 3)
    return [Member(small.eval(), [2, 0], 1, 0.9), Member(full.eval(), [2, 0, 3, 1], 2, 0.8)]


def test_fgsm_at_eps_zero_is_clean_accuracy_through_the_training_pipeline() -> None:
    from growsearch.data.loader import BatchLoader
    from growsearch.train.loop import evaluate

    members = _members()
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (40, 3, 32, 32), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 4, (40,), generator=g)
    acc = fgsm_accuracy(members, x, y, [0.0, 0.1], mean=MEAN, std=STD, num_classes=4, batch_size=16)
    # clean accuracy the way training measures it: BatchLoader normalisation, labels in output space
    lut = torch.tensor([1, 3, 0, 2])  # dataset class → output j of the full member
    loader = BatchLoader(x, lut[y], batch_size=16, mean=MEAN, std=STD, train=False)
    assert acc["final"][0] == pytest.approx(evaluate(members[-1].model, loader))
    assert 0.0 <= acc["final"][1] <= 1.0 and 0.0 <= acc["final_mi"][1] <= 1.0


def test_images_outside_the_bounds_and_bad_epsilons_are_errors() -> None:
    members = _members()
    y = torch.zeros(2, dtype=torch.long)
    with pytest.raises(RobustnessError, match="outside the models' bounds"):
        fgsm_accuracy(members, torch.randn(2, 3, 32, 32), y, [0.01], mean=MEAN, std=STD, num_classes=4)
    for bad, msg in (([], "empty"), ([-0.01], "must be in")):
        with pytest.raises(RobustnessError, match=msg):
            fgsm_accuracy(members, torch.rand(2, 3, 32, 32), y, bad, mean=MEAN, std=STD, num_classes=4)


def test_ablation_zero_changes_nothing_all_gives_a_constant_and_hooks_come_off() -> None:
    model = _members()[-1].model
    x = torch.rand(6, 3, 32, 32)
    before = model(x)
    with ablate(model, 0.0, torch.Generator().manual_seed(0)) as zeroed:
        assert zeroed == 0
        torch.testing.assert_close(model(x), before)
    with ablate(model, 1.0, torch.Generator().manual_seed(0)):
        out = model(x)
    assert torch.allclose(out, out[:1].expand_as(out))  # every input → the classifier bias
    torch.testing.assert_close(model(x), before)


# --- end to end on real runs -------------------------------------------------------------


def _run(tmp: Path, data: str, name: str, stages: list[dict]) -> Path:
    from growsearch.cli.commands import main

    (tmp / f"{name}.json").write_text(json.dumps({"dataset": data, "seed": 0, "stages": stages}))
    assert main(["run", str(tmp / f"{name}.json"), "--out", str(tmp / name), "--quiet"]) == 0
    return tmp / name


@pytest.fixture
def runs(npz_data: str, tmp_path: Path) -> tuple[Path, Path, str]:
    run = _run(
        tmp_path,
        npz_data,
        "run",
        [{"classes": 2, "arch": "vgg11@0.125", "epochs": 2}, {"classes": 4, "arch": "vgg13@0.125", "epochs": 2}],
    )
    base = _run(tmp_path, npz_data, "base", [{"classes": 4, "arch": "vgg13@0.125", "epochs": 3}])
    return run, base, npz_data


def test_robustness_command_writes_every_number_and_plot(runs, capsys: pytest.CaptureFixture) -> None:
    from growsearch.cli.commands import main

    run, base, _ = runs
    assert main(["robustness", str(run), "--baseline", str(base), "--draws", "2", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "final+MI" in out and "TNR at FNR 5% / 10%" in out
    r = json.loads((run / "robustness.json").read_text())
    final_acc = json.loads((run / "result.json").read_text())["test_acc"]
    base_acc = json.loads((base / "result.json").read_text())["test_acc"]
    assert r["fgsm"]["eps"] == [0.0, 0.005, 0.01, 0.02, 0.05, 0.1]
    # ε = 0, noise 0 and ablation 0 all equal the clean test accuracy the run measured
    assert r["fgsm"]["final"][0] == pytest.approx(final_acc)
    assert r["fgsm"]["baseline"][0] == pytest.approx(base_acc)
    assert r["noise"]["final"]["mean"][0] == pytest.approx(final_acc)
    assert r["ablation"]["final"]["mean"][0] == pytest.approx(final_acc)
    assert r["ablation"]["final"]["mean"][-1] == pytest.approx(
        0.25
    )  # all units off: a constant guess, 4 balanced classes
    assert [m["classes"] for m in r["members"]] == [2, 4]
    assert r["noise"]["final"]["draws"] and len(r["noise"]["final"]["draws"][1]) == 2
    det = r["detection"]
    for key in ("final", "final_mi", "baseline"):
        assert len(det[key]["fnr"]) == len(det["thresholds"]) == len(det[key]["tnr"])
        assert det[key]["fnr"][-1] == 1.0  # δ = 1: abstain on everything
    for name in ("noise.png", "ablation.png", "fgsm.png", "tnr_fnr.png"):
        assert (run / name).stat().st_size > 1000
    # and again: refused without --overwrite, nothing changed
    before = (run / "robustness.json").read_bytes()
    assert main(["robustness", str(run), "--quiet"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (run / "robustness.json").read_bytes() == before


def test_bad_inputs_are_one_line_errors(runs, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from growsearch.cli.commands import main

    run, _, npz = runs
    other = tmp_path / "other.npz"
    rng = np.random.default_rng(0)
    np.savez(
        other,
        x_train=rng.integers(0, 255, (30, 32, 32, 3), dtype=np.uint8),
        y_train=np.arange(30) % 3,
        x_test=rng.integers(0, 255, (6, 32, 32, 3), dtype=np.uint8),
        y_test=np.arange(6) % 3,
    )
    foreign = _run(tmp_path, f"npz:{other}", "foreign", [{"classes": 3, "arch": "vgg11@0.125", "epochs": 1}])
    capsys.readouterr()
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "result.json").write_text((run / "result.json").read_text())
    cases = [
        (["robustness", str(run), "--baseline", str(foreign)], "pass a baseline trained on the run's dataset"),
        (["robustness", str(empty)], "no stage checkpoints"),
        (["robustness", str(run), "--eps", "-0.1"], "must be in [0, 1]"),
        (["robustness", str(run), "--weights", "1,2,3"], "give one weight per stage"),
        (["robustness", str(tmp_path / "nope")], "does not exist"),
    ]
    for argv, msg in cases:
        assert main([*argv, "--quiet"]) == 2
        err = capsys.readouterr().err
        assert msg in err and err.count("\n") == 1, err
    assert not (run / "robustness.json").exists()


def test_robustness_report_python_api_samples_and_weights(runs) -> None:
    run, _, _ = runs
    r = robustness_report(
        run,
        eps=[0.0, 0.05],
        noise=[0.0],
        ablation=[0.0],
        draws=1,
        weights="uniform",
        samples=10,
        out=False,
        progress=False,
    )
    assert r["test_samples"] == 10 and r["baseline_dir"] is None and "baseline" not in r["fgsm"]
    assert [m["weight"] for m in r["members"]] == [1.0, 1.0]
    assert not (run / "robustness.json").exists()
    assert all(math.isfinite(v) for v in r["fgsm"]["final_mi"])


def test_a_low_resolution_stage_votes_on_inputs_resized_to_its_resolution(npz_data: str, tmp_path: Path) -> None:
    from growsearch.robust.members import load_members

    run = _run(
        tmp_path,
        npz_data,
        "lowres",
        [
            {"classes": 2, "arch": "vgg11@0.125", "epochs": 1, "resolution": 16},
            {"classes": 4, "arch": "vgg13@0.125", "epochs": 1},
        ],
    )
    assert [m.resolution for m in load_members(run)] == [16, 32]
    r = robustness_report(run, eps=[0.0], noise=[0.0], ablation=[0.0], draws=1, out=False, progress=False)
    assert r["fgsm"]["final"][0] == pytest.approx(json.loads((run / "result.json").read_text())["test_acc"])


def test_the_report_is_typed_and_round_trips_through_robustness_json(runs, tmp_path: Path) -> None:
    import json

    from growsearch.robust.report import RobustnessReport

    run, _, _ = runs
    r = robustness_report(
        run, eps=[0.0, 0.05], noise=[0.0], ablation=[0.0], draws=1, samples=10, out=False, progress=False
    )
    assert (
        isinstance(r, RobustnessReport) and r.fgsm["eps"] == [0.0, 0.05] and r["fgsm"] is r.fgsm
    )  # typed, and reads like the dict it was
    saved = r.save(tmp_path / "robustness.json")
    on_disk = json.loads(saved.read_text())
    assert set(on_disk) == {
        "run_dir",
        "baseline_dir",
        "dataset",
        "test_samples",
        "num_classes",
        "device",
        "seed",
        "members",
        "selection",
        "weights",
        "rule",
        "noise",
        "ablation",
        "fgsm",
        "detection",
        "wall_s",
        "versions",
        "member_kind",
    }  # the file's layout, one key added
    assert RobustnessReport.load(tmp_path) == r and RobustnessReport.from_dict({**on_disk, "added_later": 1}) == r
    assert "note" not in r and r.get("note") is None and r.get("fgsm") == r.fgsm


def test_ablation_needs_a_family_that_declares_its_units() -> None:
    from dataclasses import replace

    from growsearch.model.arch import create_model, get_family, register_family
    from growsearch.robust.members import RobustnessError
    from growsearch.robust.sweeps import ablate, unit_norms
    from helpers import restored_registries

    with restored_registries():
        register_family(replace(get_family("vgg"), name="bare", depths={"bare5": (1, 1, 1, 1, 1)}, unit_norms=()))
        model, _ = create_model("bare5@0.25", num_classes=3)
        with pytest.raises(RobustnessError, match="declares no unit layers to ablate"):
            unit_norms(model)
        with ablate(model, 0.0, torch.Generator()) as zeroed:  # nothing to zero: no error
            assert zeroed == 0


def test_a_same_shaped_checkpoint_of_another_run_is_refused(
    runs, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    import shutil

    from growsearch.cli.commands import main

    run, _, data = runs
    other = _run(
        tmp_path,
        data,
        "other",
        [{"classes": 2, "arch": "vgg11@0.125", "epochs": 2}, {"classes": 4, "arch": "vgg13@0.125", "epochs": 3}],
    )
    shutil.copyfile(other / "stage2.pt", run / "stage2.pt")  # same classes, same widths, other weights
    assert main(["robustness", str(run), "--quiet"]) == 2
    assert "is not this run's stage 2 network" in capsys.readouterr().err
    assert not (run / "robustness.json").exists()


@pytest.mark.parametrize(
    "logits, classes, weights, message",
    [
        ([torch.zeros(3, 2)], [[0, 1], [0, 1]], [1.0], "one classes list and one weight per member"),
        ([torch.zeros(3, 2)], [[0, 1]], [float("nan")], "finite numbers"),
        ([torch.zeros(3, 2)], [[0, 1]], [-1.0], "finite numbers ≥ 0"),
        ([torch.zeros(3, 3)], [[0, 1]], [1.0], "one column per class"),
        ([torch.zeros(3, 2)], [[0, 7]], [1.0], "outside"),
    ],
)
def test_mutual_inference_refuses_members_that_do_not_add_up(logits, classes, weights, message: str) -> None:
    with pytest.raises(RobustnessError, match=message):
        mutual_inference(logits, classes, weights, num_classes=4)
