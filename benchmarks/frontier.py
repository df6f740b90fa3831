"""The from-scratch frontier the digits benchmarks compare with (Kaddour et al.'s protocol).

VGG19@0.25 trained from scratch on all of digits at 2, 4, 8, 16 and 32 epochs, each budget with
its own warm-up and cosine decay to zero, peak LR swept over 0.02 and 0.05 and chosen per budget
on validation accuracy, 3 seeds; 10% of each class's training images held out for validation.
Every run's result.json is kept under results/frontiers/digits_vgg19/, so re-running this script
(or any benchmark that reads the frontier) extends it instead of redoing it.

    python benchmarks/frontier.py

Prints and saves benchmarks/results/frontier.md and frontier.png.
"""

from __future__ import annotations

import shutil

from _common import BUDGETS, LRS, RESULTS, SEEDS, frontier, frontier_table, save_report


def main() -> None:
    front = frontier("digits_vgg19", ["vgg19@0.25"])
    lines = [
        "# From-scratch frontier on digits (VGG19@0.25)",
        "",
        f"scikit-learn digits: 1437 training images, of which 10% per class (142) held out for validation (val_seed 0), "
        f"360 test images; 32×32, CPU. Budgets {BUDGETS} epochs, each warmed up for one epoch and decayed to zero at its "
        f"own end; peak LR in {LRS}, chosen per budget by mean validation accuracy; {SEEDS} seeds (mean ± std). Building it "
        f"cost {front.spent_M:.3e} MACs of training (every budget, LR and seed).",
        "",
        *frontier_table(front),
        "",
        "Every saving the digits benchmarks report is read off this curve: `M_scratch(a)` is the least M at which it reaches "
        "validation accuracy `a` (linear in log M between the two budgets around `a`).",
        "",
        "Command: `python benchmarks/frontier.py`",
        "",
        "![frontier](frontier.png)",
    ]
    save_report("\n".join(lines) + "\n", RESULTS / "frontier.md")
    shutil.copy(RESULTS / "frontiers" / "digits_vgg19" / "frontier.png", RESULTS / "frontier.png")


if __name__ == "__main__":
    main()
