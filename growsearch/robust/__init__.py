"""Robustness of what a run produced: input noise and unit ablation sweeps, FGSM (Foolbox),
mutual inference over the stage networks, no-decision detection, and the report.
"""
