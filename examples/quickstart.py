"""Quickstart: one cumulative schedule against a from-scratch frontier on scikit-learn's digits.

python examples/quickstart.py            # a few minutes on a laptop CPU
"""

from growsearch import Schedule, Stage, create_dataset, run_frontier, run_schedule
from growsearch.train.frontier import bound_word

data = create_dataset("digits")  # shipped with scikit-learn: nothing is downloaded
# VGG19@0.25 from scratch at 2, 4, 8 and 16 epochs, each budget with its LR decayed to zero
frontier = run_frontier(
    "digits", ["vgg19@0.25"], [2, 4, 8, 16], dataset=data, out_dir="runs/quickstart/frontier", overwrite=True
)
schedule = Schedule(
    "digits",
    [
        Stage(classes=5, arch="vgg11@0.25", epochs=15),  # a small net on half the classes
        Stage(classes=10, arch="vgg19@0.25", epochs=10),  # grown by Net2Net, trained on all
    ],
)
cumulative = run_schedule(
    schedule, dataset=data, out_dir="runs/quickstart/cumulative", overwrite=True, frontier=frontier
)
print(
    f"M ratio at iso-accuracy: {bound_word(cumulative.iso)}{cumulative.iso_M_ratio:.2f}x of the from-scratch cost at validation accuracy "
    f"{cumulative.val_acc:.3f} (test accuracy {cumulative.test_acc:.3f})"
)
