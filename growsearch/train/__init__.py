"""Training: the epoch loop, ``run_schedule`` stage by stage, results and checkpoints, the
stage-prefix cache, and the from-scratch frontier every saving is measured against.
"""
