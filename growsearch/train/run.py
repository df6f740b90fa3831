"""Running a schedule: ``run_schedule`` executes the plan stage by stage.

The plan (``growsearch.plan.planner``) says which network each stage trains and what it costs; this
module applies each stage's planned steps (``growsearch.model.ops``: prune, deepen, widen, add
classes, rescale the stem) to the trained network, which ``apply_transition`` checks is the
planned network, and trains it with the epoch loop
(``growsearch.train.loop``); checkpoints, ``result.json`` and the run folder belong to
``growsearch.train.results``, the stage-prefix cache to ``growsearch.train.prefix``. Each stage: take the first k classes of the class order, grow the previous stage's network
into the stage's architecture (function-preserving Net2Net ops, new classifier rows), then
train it with SGD (Nesterov momentum) and a linear warm-up followed by cosine decay, or to
saturation with ``patience``. Every epoch is scored on the validation split (what the plateau
rule reads); the test split is read once, at the end of each stage, for the report. The
optimizer and its schedule are rebuilt after every growth: growth replaces the parameter
tensors, and the momentum buffers of the old, smaller tensors have no meaning for the new ones.

Example:
    >>> from growsearch import Schedule, Stage, run_schedule
    >>> sched = Schedule("digits", [Stage(5, "vgg11@0.125", 1), Stage(10, "vgg13@0.125", 1)])
    >>> result = run_schedule(sched, progress=False)
    >>> len(result.stages), result.M == sum(s.M for s in result.stages)
    (2, True)
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from itertools import accumulate
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import torch
from torch import nn

from growsearch._io import held
from growsearch.data.dataset import Dataset, create_dataset
from growsearch.data.loader import check_budget
from growsearch.data.split import stage_data
from growsearch.model.arch import ArchSpec
from growsearch.model.cost import count_params, input_shape, stage_cost
from growsearch.model.ops import Run, apply_transition, as_network, tensors_of
from growsearch.model.prune import nonzero_macs_per_sample, threshold_widths
from growsearch.plan.planner import plan_schedule
from growsearch.plan.schedule import Schedule, TrainConfig, load_split
from growsearch.train.loop import (
    Carry,
    RunLR,
    check_compile,
    eval_loader,
    evaluate,
    resolve_device,
    schedule_threads,
    train_stage,
)
from growsearch.train.plots import plot_curve
from growsearch.train.prefix import find_prefix, find_resume, prefix_key
from growsearch.train.results import (
    RESULT_FILE,
    OutputExistsError,
    RunResult,
    StageResult,
    check_out_dir,
    finish_run,
    load_checkpoint,
    prepare_out,
    save_checkpoint,
    versions,
    weights_digest,
)
from growsearch.train.shrink import Shrinker, family_table

if TYPE_CHECKING:
    from growsearch.train.frontier import Frontier

__all__ = ["run_schedule"]


@schedule_threads
def run_schedule(
    schedule: Schedule,
    *,
    dataset: Dataset | None = None,
    out_dir: str | Path | None = None,
    overwrite: bool = False,
    device: str | torch.device | None = None,
    progress: bool = True,
    on_epoch: Callable[[dict], None] | None = None,
    on_stage: Callable[[StageResult, nn.Module], None] | None = None,
    prefix_cache: str | Path | None = None,
    frontier: "Frontier | str | Path | None" = None,
    init_spec: ArchSpec | None = None,
    resume: bool = False,
    reuse_upto: int | None = None,
) -> RunResult:
    """Train a cumulative Net2Net schedule stage by stage.

    Args:
        schedule: the stages to train; validated before any training.
        dataset: the loaded dataset (default: ``create_dataset(schedule.dataset)``); its
            validation split is carved here from ``schedule.train.val_fraction``/``val_seed``.
        out_dir: if given, writes ``stage{i}.pt`` after each stage and ``result.json`` and
            ``curve.png`` at the end (atomically; an existing result is an error unless
            ``overwrite``).
        device: ``"cuda"``/``"cpu"``; default CUDA when available. Training uses channels_last
            memory format; CUDA runs also use bf16 autocast.
        progress: show a progress bar per stage.
        on_epoch: called after every epoch with stage, epoch, val_acc, lr and cumulative M.
        on_stage: called after every trained stage with its result and the trained model (and
            once for the deepest stage loaded from ``prefix_cache``).
        prefix_cache: a directory of trained stage prefixes. Stages whose whole prefix (data,
            seed, recipe and every earlier stage) is cached are loaded instead of trained;
            each newly trained stage is added. ``result.M`` still charges every stage (what a
            user re-running the schedule pays); ``result.spent_M`` is what this call trained.
        frontier: a from-scratch frontier (a :class:`growsearch.train.frontier.Frontier` or its
            folder): checked against the dataset and validation split before training; the
            result then carries ``iso_M_ratio`` (M / M_scratch at the run's validation accuracy)
            and ``curve.png`` draws the run over the frontier.
        init_spec: build stage 1 from this exact spec (e.g. a run's pruned final network)
            instead of from its arch name; the frontier's ``--spec-from`` reference uses it.
        reuse_upto: load at most this many leading stages from ``prefix_cache`` (None: as many as
            it holds). A deterministic search fixes it when it proposes the trial, so what a
            trial reuses does not depend on which concurrent trial finished first.
        resume: continue a killed run in ``out_dir`` after its last finished stage (its
            checkpoints carry a content key of schedule, data, seed, recipe and version, and
            one that differs is refused). The result equals an uninterrupted run's (at the same
            thread count) apart from wall times.

    Returns:
        The run's costs and accuracies; ``result.M`` is Σ over stages of samples × MACs.

    Raises:
        ScheduleError: the schedule cannot run on this dataset (before training starts).
        DataError: the validation split cannot be made (e.g. a class with too few samples).
        FrontierError: ``frontier`` was measured on another dataset, class set or split.
        OutputExistsError: ``out_dir`` already holds a result and ``overwrite`` is false.
    """
    from growsearch.train.frontier import Frontier, load_frontier

    out = Path(out_dir) if out_dir is not None else None
    _check_out(out, overwrite, resume)
    dev = resolve_device(device)  # before anything is written
    schedule.validate()  # a malformed schedule is refused before any data is loaded
    if schedule.train.compile:
        check_compile(dev.type, schedule.train.compile)
    t_load = time.perf_counter()
    ds = dataset if dataset is not None else create_dataset(schedule.dataset)
    load_s = time.perf_counter() - t_load
    plans = plan_schedule(schedule, dataset=ds, init_spec=init_spec)  # the one check; every stage's network and cost
    t_load = time.perf_counter()
    ds = load_split(schedule.dataset, schedule.train, dataset=ds)
    load_s += time.perf_counter() - t_load
    check_budget(
        ds.x_train, schedule.train.batch_size
    )  # a memory budget below one batch: refused before anything is written
    front = frontier if isinstance(frontier, Frontier) or frontier is None else load_frontier(frontier)
    if front is not None:
        front.check_compatible(ds)
    order = schedule.resolved_class_order(ds.num_classes)
    # a resumed folder's checkpoints must be this schedule's (their stored key), before anything is written
    resumed = find_resume(schedule, order, out) if resume else (0, None)
    # every check has passed: from here on the run writes, holding its folder against any other command
    with held(out, OutputExistsError, check=lambda: _check_out(out, overwrite, resume)):
        work = prepare_out(out, overwrite) if out is not None else None
        cache = Path(prefix_cache) if prefix_cache is not None else None
        t_run = time.perf_counter()
        state = _start(schedule, ds, order, dev, work=work, cache=cache, resumed=resumed, reuse_upto=reuse_upto)
        if state.stages and on_stage is not None:
            on_stage(state.stages[-1], state.model)
        run_lr = _run_lr(schedule, plans)
        for i in range(state.start + 1, len(schedule.stages) + 1):
            # a threshold's widths are the trained network's: re-plan at each threshold stage, and once
            # at the first stage trained here after one finished before (a resumed or cached prefix)
            if schedule.stages[i - 1].prune_threshold is not None or (
                i == state.start + 1 and any(st.prune_threshold is not None for st in schedule.stages[: i - 1])
            ):
                plans = _replan(schedule, ds, init_spec, state, i)
            stage = _train_stage(
                schedule,
                i,
                plans[i - 1],
                ds,
                order,
                state,
                dev,
                on_epoch=on_epoch,
                progress=progress,
                work=work,
                cache=cache,
                run_lr=run_lr,
            )
            if on_stage is not None:
                on_stage(stage, state.model)
        result = _result(schedule, state, order, ds, dev, front, wall_s=time.perf_counter() - t_run, load_s=load_s)
        if work is not None:
            plot_curve(
                result, work / "curve.png", frontier=front
            )  # the run reports itself; the result writer draws nothing
            finish_run(result, work, out)
    return result


def _check_out(out: Path | None, overwrite: bool, resume: bool) -> None:
    """The run's refusals of its --out: once before anything is loaded, again inside the folder's lock."""
    if resume and (out is None or overwrite):
        raise OutputExistsError(
            "resume continues a run in its --out folder: give --out, and not --overwrite (which starts again)"
        )
    if resume and (out / RESULT_FILE).exists():
        raise OutputExistsError(f"{out} holds a finished run ({RESULT_FILE}): nothing to resume")
    check_out_dir(out, overwrite)


@dataclass
class _State:
    """A run between stages: what the next stage grows and what the result adds up."""

    model: nn.Module | None = None  # the last stage's trained network
    stages: list[StageResult] = field(default_factory=list)  # every finished stage, loaded ones included
    masked: list[tuple[int, int]] = field(
        default_factory=list
    )  # (block, layer) of identity layers whose zeros are kept
    prev_data: Dataset | None = None  # the last stage's data (a pruned network is scored on it)
    prev_res: int = 0  # the last stage's input side
    start: int = 0  # stages finished before this call: loaded from the run's own folder or the prefix cache
    resumed: int = 0  # of those, the ones the run's own folder held (--resume)
    carry: Carry | None = (
        None  # the run-level training state (lr_schedule global, carry_optimizer): step, momentum, batch order
    )
    family: dict | None = None  # the shrink phase's outcome: the frozen channel ranks, the subnets table, its costs


def _start(
    schedule: Schedule,
    ds: Dataset,
    order: list[int],
    dev: torch.device,
    *,
    work: Path | None,
    cache: Path | None,
    resumed: tuple[int, Path | None],
    reuse_upto: int | None,
) -> _State:
    """Where the run starts: after the stages its own folder already finished (``resumed``, what
    ``find_resume`` found), or after the deepest prefix in the cache; either way the same kind of
    keyed stage checkpoint."""
    cfg = schedule.train
    state = _State(prev_res=ds.image_size, carry=Carry() if cfg.one_schedule or cfg.carry_optimizer else None)
    start, path = resumed
    state.resumed = start
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        c_start, c_path = find_prefix(schedule, order, cache, upto=reuse_upto)
        if c_start > start:
            start, path = c_start, c_path
    state.start = start
    if path is None:
        return state
    model, ckpt = load_checkpoint(path, device=dev)
    state.model = model.train()
    state.stages = [StageResult(**d) for d in ckpt["stages"]]
    state.masked = [tuple(p) for p in ckpt["masked"]]
    state.family = ckpt.get(
        "shrink"
    )  # the last stage of a shrink schedule (a finished run being resumed or served from the cache)
    if state.carry is not None:  # the key says the checkpoint was trained with the same run-level state
        c = ckpt["carry"]
        state.carry = Carry(
            step=c["step"],
            momentum={k: v.to(dev) for k, v in c["momentum"].items()} if c["momentum"] else None,
            batches=c["batches"],
        )
    last = schedule.stages[start - 1]
    state.prev_data = stage_data(ds, order[: last.classes], last.fraction, schedule.seed)
    state.prev_res = state.stages[-1].resolution or ds.image_size
    if work is not None:  # every stage network of the run lands in its folder, reused ones too
        for j in range(state.resumed + 1, start + 1):
            shutil.copyfile(cache / f"{prefix_key(schedule, j, order)}.pt", work / f"stage{j}.pt")
    return state


def _train_stage(
    schedule: Schedule,
    i: int,
    plan: Any,
    ds: Dataset,
    order: list[int],
    state: _State,
    dev: torch.device,
    *,
    on_epoch: Callable[[dict], None] | None,
    progress: bool,
    work: Path | None,
    cache: Path | None,
    run_lr: RunLR | None,
) -> StageResult:
    """Stage ``i``: grow the last network by the plan's steps, train it, test it once, keep it."""
    st, n, native, cfg, carry = schedule.stages[i - 1], len(schedule.stages), ds.image_size, schedule.train, state.carry
    t0 = time.perf_counter()
    torch.manual_seed(schedule.seed * 1000 + i)  # per stage, so a resumed prefix continues identically
    data = stage_data(ds, order[: st.classes], st.fraction, schedule.seed)
    split = {"data_s": time.perf_counter() - t0}
    res = plan.resolution
    # the plan's steps applied to the trained network (the result is checked to be the planned
    # network), carrying the momentum and a map of which parameters existed before along
    carried = {}
    if state.model is not None and cfg.carry_optimizer and carry.momentum:
        carried["momentum"] = as_network(state.model, carry.momentum)
    if state.model is not None and cfg.new_param_lr != 1:
        carried["existed"] = as_network(state.model, 1.0)
    run = Run(
        generator=torch.Generator().manual_seed(schedule.seed * 1000 + i),
        score=_scorer(state.prev_data, cfg, dev, state.prev_res),
        masked_before=state.masked,
        carried=carried,
    )
    t_grow = time.perf_counter()
    model = apply_transition(state.model, plan.steps, plan.spec, run)
    if carry is not None:
        carry.momentum = tensors_of(run.carried["momentum"]) if run.carried.get("momentum") is not None else None
        if not cfg.one_schedule:
            carry.batches = None  # per stage: every stage draws its own batch order (seeded by the stage)
    lr_scale = _new_param_scale(run.carried.get("existed"), cfg.new_param_lr)
    # channels_last on CUDA (tensor cores) and on CPU too: oneDNN's NHWC convolutions trained
    # VGG19@0.25 on digits 18% faster than NCHW here (benchmarks/results/throughput.md).
    model = model.to(dev, memory_format=torch.channels_last)
    split["grow_s"] = time.perf_counter() - t_grow
    macs = plan.macs_per_sample  # counted on the planned network, which the check above says this is
    base_M = sum(s.M for s in state.stages)
    shrinker = Shrinker(plan.shrink, autocast=dev.type == "cuda") if plan.shrink is not None else None

    def epoch_cb(row: dict) -> None:
        row["cum_M"] = base_M + row["samples"] * macs + (shrinker.M if shrinker is not None else 0)
        if on_epoch is not None:
            on_epoch({"stage": i, **row})

    history, samples = train_stage(
        model,
        data,
        epochs=st.epochs,
        cfg=st.recipe(cfg),
        lr=st.lr,
        patience=st.patience,
        seed=schedule.seed * 1000 + i,
        device=dev,
        masks=run.masks,
        on_epoch=epoch_cb,
        progress=progress,
        desc=f"stage {i}/{n} {st.arch} {st.classes} cls"
        + (f" {st.fraction:g} of the data" if st.fraction else "")
        + (f" {res}px" if res != native else ""),
        resolution=res,
        run_lr=run_lr,
        carry=carry,
        lr_scale=lr_scale,
        shrinker=shrinker,
    )
    split["train_s"], split["val_s"] = sum(r["train_s"] for r in history), sum(r["val_s"] for r in history)
    M_shrink = 0
    if shrinker is not None:  # every subnet cut, recalibrated and scored; what it cost is the stage's
        t_family = time.perf_counter()
        ranks = shrinker.ranks_now(model)
        rows = family_table(model, plan.shrink, ranks, data, schedule.train, dev, res)
        split["family_s"] = time.perf_counter() - t_family
        M_shrink = shrinker.M + plan.shrink.M_recal
        state.family = {
            "ranks": {g: r.tolist() for g, r in ranks.items()},
            "subnets": rows,
            "cost": {
                "M_train": shrinker.M,
                "M_recal": plan.shrink.M_recal,
                "passes": shrinker.passes,
                "start_step": plan.shrink.start_step,
                "ramp_steps": plan.shrink.ramp_steps,
            },
        }
    nz = nonzero_macs_per_sample(model, input_shape(ds.in_chans, res, ds.image_shape))
    # The stage's one read of its test split: reported, never used to choose anything.
    t_test = time.perf_counter()
    acc = evaluate(model, eval_loader(data, schedule.train, dev, res), autocast=dev.type == "cuda")
    split["test_s"] = time.perf_counter() - t_test
    wall_s = time.perf_counter() - t0
    split["other_s"] = wall_s - sum(split.values())
    stage = StageResult(
        classes=st.classes,
        arch=st.arch,
        epochs=len(history),
        samples=samples,
        macs_per_sample=macs,
        M=stage_cost(samples, macs) + M_shrink,
        M_shrink=M_shrink,
        test_acc=acc,
        wall_s=wall_s,
        time_split=split,
        params=count_params(model),
        spec=model.arch_spec.to_dict(),
        history=history,
        nonzero_macs_per_sample=nz,
        M_nonzero=stage_cost(samples, nz),
        zero_mask=bool(run.masks),
        prune=run.prune,
        resolution=res,
        val_acc=history[-1]["val_acc"],
        stage=i,
        fraction=st.fraction if st.fraction is not None else 1.0,
        weights_sha256=weights_digest(model),
    )
    state.model, state.masked, state.prev_data, state.prev_res = model, run.masked, data, res
    state.stages.append(stage)
    # a keyed checkpoint: the stage network plus everything needed to continue after it
    key = prefix_key(schedule, i, order)
    ck = dict(
        classes=order[: st.classes],
        stage=i,
        test_acc=acc,
        val_acc=stage.val_acc,
        resolution=res,
        key=key,
        stages=[asdict(r) for r in state.stages],
        masked=[list(p) for p in state.masked],
        # what inference needs without the dataset: the input normalisation and output row j's class name
        mean=list(ds.mean),
        std=list(ds.std),
        class_names=[ds.class_names[c] for c in order[: st.classes]] if ds.class_names else [],
    )
    if shrinker is not None:
        ck["shrink"] = state.family
    if carry is not None:  # what the next stage continues from, so a cached or resumed prefix continues identically
        ck["carry"] = {
            "step": carry.step,
            "batches": carry.batches,
            "momentum": {k: v.cpu() for k, v in carry.momentum.items()}
            if carry.momentum is not None and cfg.carry_optimizer
            else None,
        }
    if work is not None:
        save_checkpoint(work / f"stage{i}.pt", model, **ck)
    if cache is not None:
        save_checkpoint(cache / f"{key}.pt", model, **ck)
    return stage


def _result(
    schedule: Schedule,
    state: _State,
    order: list[int],
    ds: Dataset,
    dev: torch.device,
    front: "Frontier | None",
    *,
    wall_s: float,
    load_s: float,
) -> RunResult:
    """The finished run: what every stage cost and reached, against the frontier when one was given."""
    stages, last = state.stages, state.stages[-1]
    M = sum(s.M for s in stages)
    # where the time went: the parts of the stages trained here (not those loaded), the rest (the
    # prefix loaded, checkpoints written, the result) as other_s; load_s came before wall_s
    split: dict[str, float] = {}
    for s in stages[state.start :]:
        for k, v in s.time_split.items():
            if k != "other_s":
                split[k] = split.get(k, 0.0) + v
    split["other_s"] = wall_s - sum(split.values())
    result = RunResult(
        M=M,
        test_acc=last.test_acc,
        wall_s=wall_s,
        macs_per_sample=last.macs_per_sample,
        stages=stages,
        params=last.params,
        M_nonzero=sum(s.M_nonzero for s in stages),
        nonzero_macs_per_sample=last.nonzero_macs_per_sample,
        spent_M=M - sum(s.M for s in stages[state.resumed : state.start]),
        reused_stages=state.start - state.resumed,
        schedule=schedule.to_dict(),
        class_order=order,
        device=str(dev),
        versions=versions(),
        val_acc=last.val_acc,
        selection="test" if ds.val_fraction == 0 else "validation",
        threads=torch.get_num_threads(),
        time_split={"load_s": load_s, **split},
    )
    if state.family is not None:
        result.subnets, result.shrink = state.family["subnets"], state.family["cost"]
    if front is not None:
        result.iso = front.iso(result.M, result.val_acc, final_arch=schedule.stages[-1].arch)
        result.iso_M_ratio, result.beyond_frontier = result.iso["iso_M_ratio"], result.iso["beyond_frontier"]
        result.iso_M_ratio_same, result.iso_M_ratio_ci = result.iso["iso_M_ratio_same"], result.iso["iso_M_ratio_ci"]
    return result


def _run_lr(schedule: Schedule, plans: list) -> RunLR | None:
    """The run's one LR schedule (``lr_schedule: global``), laid over every stage's optimizer steps."""
    cfg = schedule.train
    if not cfg.one_schedule:
        return None
    per_epoch = [math.ceil(p.samples_per_epoch / cfg.batch_size) for p in plans]  # BatchLoader's batches per epoch
    ends = list(accumulate(p.epochs * k for p, k in zip(plans, per_epoch)))
    return RunLR(
        warmup=max(1, int(cfg.warmup_epochs * per_epoch[0])),
        total=ends[-1],
        starts=tuple(ends[:-1]),
        rewarm=tuple(int(cfg.rewarm_epochs * k) for k in per_epoch[1:]),
        peak=cfg.rewarm_peak,
    )


def _replan(schedule: Schedule, ds: Dataset, init_spec: ArchSpec | None, state: "_State", i: int) -> list:
    """The plan once every ``prune_threshold`` up to stage ``i`` has said its widths: the finished
    stages' from their records, stage ``i``'s from the trained network it prunes."""
    known = {
        j: tuple(tuple(b) for b in st.prune["widths_after"])
        for j, st in enumerate(state.stages, 1)
        if schedule.stages[j - 1].prune_threshold is not None
    }
    thr = schedule.stages[i - 1].prune_threshold
    if thr is not None:
        known[i] = threshold_widths(state.model, thr)
    return plan_schedule(schedule, dataset=ds, init_spec=init_spec, prune_widths=known)


def _new_param_scale(existed: nn.Module | None, mult: float) -> dict[str, torch.Tensor] | None:
    """``train.new_param_lr`` as per-entry update multipliers: ``mult`` where growth created a
    parameter from nothing (a carried map of ones reads zero there: inserted layers, new class
    rows), 1 elsewhere; None when no op could say (then every parameter trains alike)."""
    if existed is None:
        return None
    return {k: torch.where(t == 0, mult, 1.0) for k, t in tensors_of(existed).items() if bool((t == 0).any())}


def _scorer(data: Dataset | None, cfg: TrainConfig, dev: torch.device, res: int) -> Callable[[nn.Module], dict]:
    """A pruned network's accuracies on the previous stage's data, before growth (``result.json``'s ``prune``)."""

    def score(model: nn.Module) -> dict:
        return {
            f"{split}_acc_after_prune": evaluate(
                model, eval_loader(data, cfg, dev, res, split=split), autocast=dev.type == "cuda"
            )
            for split in ("val", "test")
        }

    return score
