"""What optuna-dashboard shows of a growsearch study, read through the dashboard's own API
in-process (issue 44): each trial's constraints, and the best feasible trial in the study's note."""

import io
import json
from wsgiref.util import setup_testing_defaults

import optuna
import pytest

from growsearch.search.study import note_best, set_constraints

pytest.importorskip("optuna_dashboard")


def _get(app, path: str) -> dict:
    env: dict = {"PATH_INFO": path, "QUERY_STRING": "after=0", "REQUEST_METHOD": "GET", "wsgi.input": io.BytesIO()}
    setup_testing_defaults(env)
    out: dict = {}

    def start(status, headers, exc_info=None):
        out["status"] = status

    body = b"".join(app(env, start))
    assert out["status"].startswith("200"), (out["status"], env["wsgi.errors"].getvalue()[-800:])
    return json.loads(body)


def test_the_dashboard_shows_each_trials_constraints_and_the_best_feasible_in_the_note(tmp_path) -> None:
    from optuna_dashboard import wsgi

    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 's.db'}")
    study = optuna.create_study(study_name="s", storage=storage)
    # trial 0: the cheapest, infeasible (validation 0.30 against a target of 0.88); trial 1 feasible
    for ratio, constraint in ((0.26, 0.58), (0.9, -0.01)):
        t = study.ask()
        set_constraints(t, {"constraint": constraint}, storage)
        study.tell(t, ratio)
    assert note_best(study, ["# growsearch: **best feasible: trial number 1**", "target 0.88"])
    detail = _get(wsgi(storage), f"/api/studies/{storage.get_study_id_from_name('s')}")
    shown = {t["number"]: t["constraints"] for t in detail["trials"]}
    assert shown == {0: [pytest.approx(0.58)], 1: [pytest.approx(-0.01)]}  # empty lists before
    assert study.best_trial.number == 1  # Optuna's own best reads the constraints
    note = detail["note"]["body"]
    assert "best feasible: trial number 1" in note
