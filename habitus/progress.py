"""Progress reporting by stage: a bar in the CLI, a stage and percentage in a job's status."""

from collections.abc import Callable
from enum import StrEnum


class Stage(StrEnum):
    READ = "read"  # read files and group them into series
    CHOOSE = "choose"  # choose the series to analyse
    VOLUME = "volume"  # decode pixels, build the HU volume
    SEGMENT = "segment"
    METRICS = "metrics"
    OUTPUTS = "outputs"


STAGE_WEIGHTS: dict[Stage, float] = {
    Stage.READ: 0.10,
    Stage.CHOOSE: 0.01,
    Stage.VOLUME: 0.09,
    Stage.SEGMENT: 0.65,
    Stage.METRICS: 0.05,
    Stage.OUTPUTS: 0.10,
}
"""Share of a typical run spent in each stage, to turn stage progress into overall percent."""

ProgressCallback = Callable[[Stage, float], None]
"""Called with the current stage and the fraction (0 to 1) of that stage done."""

StepCallback = Callable[[float], None]
"""Called by one stage with the fraction (0 to 1) of its own work done."""


def overall_percent(stage: Stage, fraction: float) -> float:
    """Percent of the whole analysis done when ``stage`` is ``fraction`` complete."""
    done = 0.0
    for s in Stage:
        if s == stage:
            return round(100.0 * (done + STAGE_WEIGHTS[s] * min(max(fraction, 0.0), 1.0)), 1)
        done += STAGE_WEIGHTS[s]
    return 100.0


def ignore_progress(stage: Stage, fraction: float) -> None:
    """A progress callback that reports nowhere."""
