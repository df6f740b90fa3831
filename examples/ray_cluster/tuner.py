"""growsearch's Tune pieces in your own Tuner, on your own Ray cluster.

Every node must see ``--storage-path``, a shared folder such as an NFS mount: Ray ≥ 2.7 keeps
trial checkpoints there, and growsearch keeps its prefix cache (the stage networks later trials
reuse) beside them. The Optuna study lives in
``--storage`` (an SQLAlchemy URL every node can reach; SQLite only when the driver is the sole
writer, as here: Tune's searcher runs in the driver).

    # on the head node, then on each worker
    ray start --head --port 6379
    ray start --address HEAD_IP:6379
    # anywhere with the same shared folder
    growsearch baseline --data digits --arch vgg19@0.25 --budgets 2,4,8,15 --seeds 0,1,2 --out /shared/gs/frontier
    python examples/ray_cluster/tuner.py digits_vgg --baseline /shared/gs/frontier \
        --address HEAD_IP:6379 --storage-path /shared/gs --storage sqlite:///mine.db --trials 24

Afterwards ``growsearch export --storage sqlite:///mine.db --study mine -o best/`` writes the best
schedule and its trained network. ``--address local`` starts a Ray on this machine instead.
"""

from __future__ import annotations

import argparse
import os

import ray
from ray import tune

from growsearch.search.best import load_best
from growsearch.search.cluster import runtime_env
from growsearch.search.tune import tune_pieces


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("space", help="a shipped space's name or a YAML path")
    ap.add_argument(
        "--baseline", required=True, help="a `growsearch baseline --out` folder (the from-scratch frontier)"
    )
    ap.add_argument(
        "--address", default="auto", help="the cluster's address (ray start --head); 'local' starts one here"
    )
    ap.add_argument("--storage-path", required=True, help="a folder every node sees: checkpoints and the prefix cache")
    ap.add_argument("--storage", required=True, help="the Optuna study's SQLAlchemy URL")
    ap.add_argument("--study", default="mine")
    ap.add_argument("--trials", type=int, default=24)
    ap.add_argument("--cpus-per-trial", type=float, default=1)
    ap.add_argument("--gpus-per-trial", type=float, default=0)
    args = ap.parse_args(argv)

    shared = os.path.abspath(args.storage_path)  # Ray wants an absolute path
    cache = os.path.join(shared, f"{args.study}_prefix_cache")
    # runtime_env: the families, ops and sources this script registered (none here) reach every worker
    ray.init(address=args.address, log_to_driver=False, runtime_env=runtime_env())
    try:
        # the trainable, the searcher (whose best trial's network and result.json become Optuna
        # artifacts in the shared folder), the stopper and the trial lines, from one set of settings
        p = tune_pieces(
            args.space,
            args.baseline,
            storage=args.storage,
            study_name=args.study,
            cache_dir=cache,
            trials=args.trials,
            cpus_per_trial=args.cpus_per_trial,
            gpus_per_trial=args.gpus_per_trial,
            artifacts=os.path.join(shared, f"{args.study}_artifacts"),
        )
        tuner = tune.Tuner(
            p.trainable,
            tune_config=tune.TuneConfig(search_alg=p.search_alg, num_samples=args.trials),
            run_config=tune.RunConfig(
                name=args.study, storage_path=shared, stop=p.stop, callbacks=p.callbacks, verbose=0
            ),
        )
        tuner.fit()
    finally:
        ray.shutdown()
    best = load_best(args.storage, args.study)
    print(
        f"best schedule: {' -> '.join(f'{s.classes}:{s.arch}' for s in best.stages)}; export it with: "
        f"growsearch export --storage {args.storage} --study {args.study} -o best/"
    )


if __name__ == "__main__":
    main()
