"""The search: spaces, the judge of a trial, what a study records, the Optuna route (your own
study), the Ray Tune route (your own Tuner), ``growsearch search`` built from them, and the
study's best schedule and network.
"""
