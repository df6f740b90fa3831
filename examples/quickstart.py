"""Quickstart: one cumulative schedule and its from-scratch baseline on scikit-learn's digits.

    python examples/quickstart.py            # about a minute on a laptop CPU
"""

from growsearch import Schedule, Stage, create_dataset, run_baseline, run_schedule

data = create_dataset("digits")  # shipped with scikit-learn: nothing is downloaded
schedule = Schedule(
    "digits",
    [
        Stage(classes=5, arch="vgg11@0.25", epochs=15),  # a small net on half the classes
        Stage(classes=10, arch="vgg19@0.25", epochs=10),  # grown by Net2Net, trained on all
    ],
)
cumulative = run_schedule(schedule, dataset=data, out_dir="runs/quickstart/cumulative", overwrite=True)
baseline = run_baseline("digits", "vgg19@0.25", epochs=15, dataset=data, out_dir="runs/quickstart/baseline", overwrite=True)
print(f"M ratio {cumulative.M / baseline.M:.2f}x at accuracy {cumulative.test_acc:.3f} (baseline {baseline.test_acc:.3f})")
