"""Schedules and their plan: what each stage trains and costs, known before any training.

:mod:`growsearch.plan.schedule` holds the schedule types (the unit users write, import and
re-run); :mod:`growsearch.plan.planner` is the single structural check of a schedule.
"""
