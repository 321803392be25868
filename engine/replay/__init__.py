"""Replaying a workload through KEDA polling, the HPA and pods that take time to start.

Pure computation, as the rest of the engine: `helios simulate` replays whole traces with it, and each
workload's refit replays its own recent history to choose how much to provision (provision.py).
"""
