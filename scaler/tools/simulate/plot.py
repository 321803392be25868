"""One PNG per trace: the demand and, per policy, the capacity of its ready replicas."""

from __future__ import annotations

from pathlib import Path

from .compare import Comparison


def plot(folder: Path, result: Comparison) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(12, 4.5))
    first = next(iter(result.runs.values()))
    when = first.times.astype("datetime64[s]")
    ax.plot(when, first.demand, color="black", lw=1.2, label="demand", zorder=3)
    for policy, run in result.runs.items():
        o = run.outcome
        ax.step(when, run.ready * result.cluster.capacity, where="post", lw=0.9, alpha=0.8,
                label=f"{policy}: under {o.underprovisioned_fraction:.1%}, {o.replica_hours:.0f} replica-h")
    ax.set_title(f"{result.trace}: demand and ready capacity (target {result.cluster.target_value:.4g} per replica, "
                 f"startup {result.cluster.startup_delay:g}s)")
    ax.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    path = folder / f"{Path(result.trace).stem}.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
