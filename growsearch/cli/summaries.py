"""What the ``growsearch`` command prints: a run's table and M-ratio line, a search's report,
a robustness table. Plain text built from the result objects; no training, no I/O.

Example:
    >>> print(iso_line({"bound": None, "iso_M_ratio": 1.25, "iso_M_ratio_ci": [1.1, 1.4], "M_scratch": 1e9, "reference": "vgg11@0.25"}, 0.95, "vgg19@0.25"))
    M ratio at iso-accuracy: 1.250x [1.100, 1.400] of M_scratch = 1e+09 (from scratch vgg11@0.25 reaching validation accuracy 0.9500); a loss: costs 25% more than training from scratch; vgg11@0.25 from scratch reaches it for 0.80x this schedule's M: train it instead
"""

from __future__ import annotations

from growsearch._io import shown, shown_url

__all__ = [
    "family_text",
    "iso_line",
    "ratio_text",
    "reading",
    "run_summary",
    "search_report",
    "robustness_table",
    "verdict",
]


def iso_line(iso: dict, acc: float, final_arch: str | None = None) -> str:
    """One line stating a run's iso-accuracy M ratio against the frontier's family (with its
    interval and bound), then against ``final_arch`` alone, then what the interval says."""
    from growsearch.train.frontier import bound_word

    bound = bound_word(iso)
    why = {
        "upper": " (more accurate than every budget: the ratio against the most accurate one is an upper bound)",
        "lower": " (less accurate than the cheapest budget: a shorter from-scratch run might match it, so this is a lower bound)",
    }.get(iso["bound"], "")
    ci = iso.get("iso_M_ratio_ci")
    same = iso.get("iso_M_ratio_same")
    line = (
        f"M ratio at iso-accuracy: {bound}{ratio_text(iso['iso_M_ratio'], ci)} of M_scratch = {iso['M_scratch']:.4g} "
        f"(from scratch {iso['reference']} reaching validation accuracy {acc:.4f}){why}"
    )
    if same is not None and final_arch is not None:
        line += f"; against {final_arch} alone {bound}{same:.3f}x"
    return line + "; " + reading(iso["iso_M_ratio"], ci, iso["bound"], iso["reference"], final_arch)


def ratio_text(ratio: float, ci: list[float] | None) -> str:
    """A ratio with its interval: ``0.810x [0.660, 0.970]``."""
    return f"{ratio:.3f}x" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def reading(
    ratio: float,
    ci: list[float] | None,
    bound: str | None = None,
    reference: str | None = None,
    final_arch: str | None = None,
) -> str:
    """What a ratio says, read on its interval: a saving only when its upper end is below 1, a
    loss only when its lower end is above 1, else no measurable difference; and, when a network
    other than the one grown is cheaper from scratch, which one to train instead."""
    lo, hi = ci if ci else (ratio, ratio)
    if bound == "upper" and hi >= 1:
        words = "more accurate than every from-scratch budget: no ratio above 1 can be read"
    elif hi < 1 and bound != "lower":
        words = f"a saving of {1 - ratio:.0%} over training from scratch"
    elif lo > 1 and bound != "upper":
        words = f"a loss: costs {ratio - 1:.0%} more than training from scratch"
    else:
        words = "no measurable difference from training from scratch (the interval holds 1)"
    if reference and final_arch and reference != final_arch and ratio > 1 and bound != "upper":
        words += f"; {reference} from scratch reaches it for {1 / ratio:.2f}x this schedule's M: train it instead"
    return words


def run_summary(result) -> str:
    from growsearch.data.dataset import TEST_SELECTION_NOTE

    lines = [
        f"{'stage':>5}  {'arch':<20} {'classes':>7} {'px':>4} {'epochs':>6} {'M':>12} {'val_acc':>8} {'test_acc':>8} {'wall_s':>7}"
    ]
    for i, st in enumerate(result.stages, 1):
        lines.append(
            f"{i:>5}  {st.arch:<20} {st.classes:>7} {st.resolution or '-':>4} {st.epochs:>6} {st.M:>12.4g} {st.val_acc:>8.4f} {st.test_acc:>8.4f} {st.wall_s:>7.1f}"
        )
    lines.append(
        f"{'total':>5}  {'':<20} {'':>7} {'':>4} {'':>6} {result.M:>12.4g} {result.val_acc:>8.4f} {result.test_acc:>8.4f} {result.wall_s:>7.1f}"
    )
    if result.time_split:
        lines.append(time_line(result.time_split))
    if result.iso is not None:
        lines.append(iso_line(result.iso, result.val_acc, result.stages[-1].arch))
        lines.append(f"(against the frontier's longest budget alone: {result.iso['M_ratio_longest']:.3f}x)")
    if result.subnets:
        lines.append(family_text(result))
    if result.selection == "test":
        lines.append(TEST_SELECTION_NOTE)
    return "\n".join(lines)


def time_line(split: dict) -> str:
    """Where a run's time went (``result.json`` ``time_split``), largest part first."""
    names = {
        "train_s": "train",
        "val_s": "validation",
        "test_s": "test",
        "data_s": "stage data",
        "grow_s": "growth",
        "family_s": "subnets",
        "other_s": "other",
    }
    parts = sorted(((v, names.get(k, k)) for k, v in split.items() if k != "load_s"), reverse=True)
    return f"time: {', '.join(f'{n} {max(v, 0):.1f} s' for v, n in parts)}; reading the dataset {split.get('load_s', 0):.1f} s before"


def family_text(result, ratio: dict | None = None) -> str:
    """A shrink run's subnets (BatchNorm recalibrated; * on the validation Pareto front) and, given
    ``ratio`` (``growsearch.train.family.family_ratio``), each one's M_scratch and the family ratio."""
    per = {e["subnet"]: e for e in (ratio or {}).get("subnets", [])}
    lines = [
        f"{'subnet':<12} {'arch':<16} {'params':>9} {'MACs/img':>11} {'val_acc':>8} {'test_acc':>8}"
        + (f" {'M_scratch':>11} {'M ratio':>8}" if ratio else "")
    ]
    for r in result.subnets:
        line = f"{r['subnet'] + ('*' if r['pareto'] else ''):<12} {r['arch']:<16} {r['params']:>9} {r['macs_per_sample']:>11} {r['val_acc']:>8.4f} {r['test_acc']:>8.4f}"
        if ratio:
            e = per.get(r["subnet"], {})
            line += (
                f" {e['M_scratch']:>11.4g} {e['ratio']:>7.3f}x"
                if e.get("M_scratch")
                else f" {'no frontier':>11} {'':>8}"
            )
        lines.append(line)
    sh = result.shrink or {}
    lines.append(
        f"shrink phase: {sh.get('passes', 0)} subnet passes, M {sh.get('M_train', 0):.4g} training + {sh.get('M_recal', 0):.4g} BatchNorm recalibration (in the last stage's M)"
    )
    if ratio:
        if ratio["family_ratio"] is None:
            lines.append(
                f"family ratio: unknown, no frontier of {', '.join(ratio['missing'])}: train one with growsearch baseline --arch ARCH "
                "(the arch column), or --spec-from the folder growsearch subnets -o writes"
            )
        else:
            why = {
                "upper": " (a subnet beat every budget of its frontier: an upper bound)",
                "lower": " (a subnet is below its frontier's cheapest budget: a lower bound)",
                "mixed": " (bounds both ways: read the per-subnet ratios)",
            }.get(ratio["bound"], "")
            lines.append(
                f"family ratio ({ratio['chosen']}): {ratio['family_ratio']:.3f}x = M {ratio['M']:.4g} / Σ M_scratch {ratio['M_scratch_sum']:.4g} "
                f"of {sum(e['chosen'] for e in ratio['subnets'])} subnets{why}"
            )
    return "\n".join(lines)


def search_report(res) -> str:
    from growsearch.data.dataset import TEST_SELECTION_NOTE
    from growsearch.search.confirm import numbers

    judge = res.judge
    front, ref, m = judge.frontier, judge.ref, judge.metric
    name = m.replace("_", " ")
    denominator = judge.denominator
    on_target = front.cheapest_reaching(judge.target)
    spent = res.spent_M + front.spent_M
    lines = [
        f"frontier: best validation accuracy {front.best_val_acc:.4f} ({len(front.references[0].points)} budgets); "
        f"target {judge.target:.4f}; {denominator} {judge.ref_cost:.4g} ({ref['reference']})"
        + (" — below the cheapest budget: ratios are lower bounds, add a shorter budget" if ref["below"] else ""),
        f"{res.trials} trials; search cost (trials with prefix reuse + frontier) {spent / on_target.M:.2f}x the frontier's cheapest "
        f"on-target budget ({on_target.epochs} epochs), {spent / front.longest.M:.2f}x its longest ({front.longest.epochs} epochs); "
        f"trials alone without prefix reuse: {res.charged_M / on_target.M:.2f}x",
    ]
    conf = res.confirmed or {}
    rows = {r["number"]: r for r in conf.get("rows", [])}
    if rows:
        lines.append(
            f"confirmed: the {conf['top']} cheapest feasible trial(s) again on {conf['seeds']} more seed(s), chosen on mean validation accuracy:"
        )
        lines += [
            f"  trial {r['number'] + 1}: mean validation {r['val_acc']:.4f} over {len(r['seeds'])} seeds "
            f"({'reaches' if r['feasible'] else 'misses'} the target), {name} {ratio_text(r['ratio'], r['ci'])}"
            for r in rows.values()
        ]
    if res.best_schedule is None and rows:
        lines.append(
            f"no candidate held up: none of the {len(rows)} cheapest feasible trials reaches the target on the mean of "
            f"{conf['seeds'] + 1} seeds (their single seeds were lucky); search again with --references, more --trials, or a looser tolerance"
        )
    elif res.best_schedule is None:
        lines.append(
            f"no schedule reached the target validation accuracy in {res.trials} trials: search again with --references (it starts "
            "from the from-scratch schedule, feasible by construction), a wider epoch range, more --trials, or a looser tolerance"
        )
    else:
        b = res.best
        fgsm = f", FGSM-MI accuracy {b['fgsm_mi_acc']:.4f} at eps {b['fgsm_eps']:g}" if "fgsm_mi_acc" in b else ""
        label = f" ({b['reference']})" if "reference" in b else ""
        final = res.best_schedule.stages[-1].arch
        same = f"; against {final} alone {b[m + '_same']:.3f}x" if b.get(m + "_same") is not None else ""
        # read on the mean of its seeds when it was confirmed, as it was chosen
        n = numbers(res.confirmed, res.best_number, b, m)
        ratio, ci, val, test, how = n["ratio"], n["ci"], n["val_acc"], n["test_acc"], ""
        if n["seeds"] > 1:
            how, same = f" (mean of {n['seeds']} seeds)", ""
        lines.append(
            f"best feasible: trial {res.best_number + 1}{label}{how}, {name} at iso-accuracy {ratio_text(ratio, ci)} "
            f"({judge.cost} / {denominator}){same} at validation accuracy {val:.4f}, test accuracy {test:.4f}{fgsm}"
        )
        lines.append("  " + reading(ratio, ci, "lower" if ref["below"] else None, ref["reference"], final))
        for i, st in enumerate(res.best_schedule.stages, 1):
            extra = "".join(
                [
                    f", prune {st.prune_ratio:g}" if st.prune_ratio else "",
                    ", zero mask" if st.zero_mask else "",
                    f", lr {st.lr:.3g}" if st.lr else "",
                ]
            )
            lines.append(f"  stage {i}: {st.classes} classes, {st.arch}, {st.epochs} epochs{extra}")
        lines.append(verdict(res))
        best = shown(res.out_dir / "best_schedule.json")
        lines.append(
            f"wrote {best} (re-run it against the same frontier: growsearch run {best} --out DIR --baseline {shown(res.out_dir / 'frontier')}; "
            "it trains with the trials' "
            f"{res.best_schedule.threads} torch thread(s), which reproduces their numbers; --all-cores is faster but drifts slightly)"
        )
        lines.append(f"export: growsearch export --storage {shown_url(res.storage)} --study {res.study_name} -o best/")
    if res.pareto:
        lines.append(f"Pareto front ({name} vs FGSM-MI accuracy on validation), feasible trials:")
        lines += [
            f"  trial {p['number']}: {name} {p[m]:.3f}x, FGSM-MI {p['fgsm_mi_acc']:.4f}, validation accuracy {p['val_acc']:.4f}"
            for p in res.pareto
        ]
    if front.val_fraction == 0:
        lines.append(TEST_SELECTION_NOTE)
    lines.append(f"trials: {shown(res.out_dir / 'trials.csv')}, plot: {shown(res.out_dir / 'pareto.png')}")
    import importlib.util

    missing = "" if importlib.util.find_spec("optuna_dashboard") else '  (pip install "growsearch[dashboard]" first)'
    lines.append(
        f"dashboard: optuna-dashboard {shown_url(res.storage)} --artifact-dir {shown(res.out_dir / 'artifacts')}{missing}"
    )
    return "\n".join(lines)


def verdict(res) -> str:
    """Whether growth paid in this search, in one line (a ratio below 1 is a saving, above 1 a loss)."""
    line = _growth_verdict(res)
    b, m = res.best, res.judge.metric
    if b and len(b["schedule"]["stages"]) == 1 and (res.best_grown is None or b[m] < res.best_grown[m]):
        line += f"; the cheapest feasible schedule does not grow (trial {res.best_number + 1}, one stage, {b[m]:.3f}x): on this evidence, train from scratch"
    return line


def _growth_verdict(res) -> str:
    g, m, cost = res.best_grown, res.judge.metric, res.judge.cost
    if g is None:
        return f"verdict: no grown schedule reached the target in {res.trials} trials"
    where = f"trial {g['number'] + 1} at {ratio_text(g[m], g.get('ci'))}"
    if g[m] < 1 and g.get("ci") and g["ci"][1] >= 1:
        return (
            f"verdict: no measurable saving from growth in this search: the cheapest feasible grown schedule, {where}, has an "
            "interval that holds 1 (the frontier's seeds move M_scratch that much)"
        )
    if g[m] < 1:
        return (
            f"verdict: growth beat the from-scratch frontier in this search: {where}, {1 - g[m]:.0%} less {cost} at iso-accuracy; "
            + (
                f"the mean of {g['seeds']} seeds on {res.val_size} validation images"
                if g.get("seeds", 1) > 1
                else f"one seed judged on {res.val_size} validation images, so re-run it over seeds before trusting it (search --confirm does)"
            )
        )
    return (
        f"verdict: no grown schedule beat the from-scratch frontier in {res.trials} trials (the cheapest feasible one, {where}, "
        f"costs {g[m] - 1:.0%} more {cost} than training from scratch)"
    )


def robustness_table(r: dict) -> str:
    cols = [k for k in ("baseline", "final", "final_mi") if k in r["fgsm"]]
    names = {"baseline": "baseline", "final": "final", "final_mi": "final+MI"}
    lines = [
        "FGSM accuracy (Foolbox LinfFastGradientAttack)",
        f"{'eps':>7}  " + "  ".join(f"{names[c]:>9}" for c in cols),
    ]
    for i, e in enumerate(r["fgsm"]["eps"]):
        lines.append(f"{e:>7g}  " + "  ".join(f"{r['fgsm'][c][i]:>9.4f}" for c in cols))
    det = r["detection"]
    lines.append(f"no-decision detection at eps {det['eps']:g}: TNR at FNR 5% / 10%")
    for c in cols:
        f5, f10 = det[c]["tnr_at_fnr_5"], det[c]["tnr_at_fnr_10"]
        lines.append(
            f"  {names[c]:<9} {'n/a' if f5 is None else f'{f5:.4f}'} / {'n/a' if f10 is None else f'{f10:.4f}'}"
        )
    for sec, label in (("noise", "noise"), ("ablation", "ablation")):
        area = r[sec]["area"]
        lines.append(
            f"mean accuracy over the {label} levels: " + ", ".join(f"{names[k]} {v:.4f}" for k, v in area.items())
        )
    return "\n".join(lines)
