"""``autoscaling.knative.dev/*`` annotation keys and their validation (Knative's rules and wording).

``validate_annotations(annotations, autoscaler_config)`` returns a ``FieldError`` whose paths
are annotation keys; callers prefix them (``metadata.annotations``). Legacy camelCase keys
(``autoscaling.knative.dev/minScale``) are read as Knative reads them. Pure; no side effects.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from knserve.networking import KPA_CLASS
from serving.apis.field_error import (
    FieldError,
    err_generic,
    err_invalid_value,
    err_out_of_bounds_value,
)
from serving.config.autoscaler import (
    PANIC_THRESHOLD_PERCENTAGE_MAX,
    PANIC_THRESHOLD_PERCENTAGE_MIN,
    PANIC_WINDOW_PERCENTAGE_MAX,
    PANIC_WINDOW_PERCENTAGE_MIN,
    TARGET_MIN,
    WINDOW_MAX_SECONDS,
    WINDOW_MIN_SECONDS,
    AutoscalerConfig,
)
from serving.config.parsers import format_duration, parse_go_duration

GROUP: Final = "autoscaling.knative.dev"
HPA_CLASS: Final = "hpa.autoscaling.knative.dev"
CLASS: Final = (f"{GROUP}/class",)
MIN_SCALE: Final = (f"{GROUP}/min-scale", f"{GROUP}/minScale")
MAX_SCALE: Final = (f"{GROUP}/max-scale", f"{GROUP}/maxScale")
INITIAL_SCALE: Final = (f"{GROUP}/initial-scale", f"{GROUP}/initialScale")
ACTIVATION_SCALE: Final = (f"{GROUP}/activation-scale",)
METRIC: Final = (f"{GROUP}/metric",)
METRIC_AGGREGATION_ALGORITHM: Final = (f"{GROUP}/metric-aggregation-algorithm", f"{GROUP}/metricAggregationAlgorithm")
TARGET: Final = (f"{GROUP}/target",)
TARGET_UTILIZATION_PERCENTAGE: Final = (
    f"{GROUP}/target-utilization-percentage", f"{GROUP}/targetUtilizationPercentage")
TARGET_BURST_CAPACITY: Final = (f"{GROUP}/target-burst-capacity", f"{GROUP}/targetBurstCapacity")
WINDOW: Final = (f"{GROUP}/window",)
PANIC_WINDOW_PERCENTAGE: Final = (f"{GROUP}/panic-window-percentage", f"{GROUP}/panicWindowPercentage")
PANIC_THRESHOLD_PERCENTAGE: Final = (
    f"{GROUP}/panic-threshold-percentage", f"{GROUP}/panicThresholdPercentage")
SCALE_DOWN_DELAY: Final = (f"{GROUP}/scale-down-delay", f"{GROUP}/scaleDownDelay")
SCALE_TO_ZERO_POD_RETENTION_PERIOD: Final = (
    f"{GROUP}/scale-to-zero-pod-retention-period", f"{GROUP}/scaleToZeroPodRetentionPeriod")

_INT = re.compile(r"^[+-]?\d+$")
_INT32_MAX: Final = 2**31 - 1


def get(annotations: Mapping[str, str], keys: tuple[str, ...]) -> tuple[str, str] | None:
    """(key, value) of the first of ``keys`` present, as Knative's ``kmap.KeyPriority.Get``."""
    for key in keys:
        if key in annotations:
            return key, annotations[key]
    return None


def _float(value: str) -> float | None:
    if value != value.strip() or "_" in value:
        return None  # Go's strconv.ParseFloat accepts neither
    try:
        return float(value)
    except ValueError:
        return None


def _duration(value: str) -> float | None:
    try:
        return parse_go_duration(value)
    except ValueError:
        return None


def _int_ge0(annotations: Mapping[str, str], keys: tuple[str, ...]) -> tuple[int, FieldError | None]:
    found = get(annotations, keys)
    if found is None:
        return 0, None
    key, value = found
    if not _INT.match(value):
        return 0, err_invalid_value(value, key)
    number = int(value)
    if number < 0 or number > _INT32_MAX:
        return 0, err_out_of_bounds_value(value, 0, _INT32_MAX, key)
    return number, None


def validate_annotations(annotations: Mapping[str, str] | None, config: AutoscalerConfig) -> FieldError:
    annotations = annotations or {}
    return (
        _validate_class(annotations)
        .also(_validate_min_max_scale(annotations, config))
        .also(_validate_floats(annotations))
        .also(_validate_duration(annotations, WINDOW, minimum=WINDOW_MIN_SECONDS, whole_seconds=True))
        .also(_validate_duration(annotations, SCALE_TO_ZERO_POD_RETENTION_PERIOD, whole_seconds=False))
        .also(_validate_duration(annotations, SCALE_DOWN_DELAY, whole_seconds=True))
        .also(_validate_metric(annotations, config))
        .also(_validate_algorithm(annotations))
        .also(_validate_initial_scale(annotations, config))
    )


def _validate_class(annotations: Mapping[str, str]) -> FieldError:
    found = get(annotations, CLASS)
    if found and found[1].endswith(".knative.dev") and found[1] not in (KPA_CLASS, HPA_CLASS):
        return err_invalid_value(found[1], found[0])
    return FieldError()


def _validate_algorithm(annotations: Mapping[str, str]) -> FieldError:
    found_class = get(annotations, CLASS)
    if found_class is None or found_class[1] != KPA_CLASS:
        return FieldError()
    found = get(annotations, METRIC_AGGREGATION_ALGORITHM)
    if found and found[1] and found[1] not in ("linear", "weighted-exponential", "weightedExponential"):
        return err_invalid_value(found[1], found[0])
    return FieldError()


def _validate_floats(annotations: Mapping[str, str]) -> FieldError:
    errors = FieldError()
    found = get(annotations, PANIC_WINDOW_PERCENTAGE)
    if found:
        key, value = found
        number = _float(value)
        if number is None:
            errors = errors.also(err_invalid_value(value, key))
        elif not PANIC_WINDOW_PERCENTAGE_MIN <= number <= PANIC_WINDOW_PERCENTAGE_MAX:
            # Knative replaces (not adds to) the errors here; kept for identical output.
            errors = err_out_of_bounds_value(value, PANIC_WINDOW_PERCENTAGE_MIN, PANIC_WINDOW_PERCENTAGE_MAX, key)
    found = get(annotations, PANIC_THRESHOLD_PERCENTAGE)
    if found:
        key, value = found
        number = _float(value)
        if number is None:
            errors = errors.also(err_invalid_value(value, key))
        elif not PANIC_THRESHOLD_PERCENTAGE_MIN <= number <= PANIC_THRESHOLD_PERCENTAGE_MAX:
            errors = errors.also(err_out_of_bounds_value(
                value, PANIC_THRESHOLD_PERCENTAGE_MIN, PANIC_THRESHOLD_PERCENTAGE_MAX, key))
    found = get(annotations, TARGET)
    if found:
        key, value = found
        number = _float(value)
        if number is None:
            errors = errors.also(err_invalid_value(value, key))
        elif number < TARGET_MIN:
            errors = errors.also(err_generic(f"target {value} should be at least {TARGET_MIN:g}", key))
    found = get(annotations, TARGET_UTILIZATION_PERCENTAGE)
    if found:
        key, value = found
        number = _float(value)
        if number is None:
            errors = errors.also(err_invalid_value(value, key))
        elif not 1 <= number <= 100:
            errors = errors.also(err_out_of_bounds_value(value, 1, 100, key))
    found = get(annotations, TARGET_BURST_CAPACITY)
    if found:
        key, value = found
        number = _float(value)
        if number is None or (number < 0 and number != -1):
            errors = errors.also(err_invalid_value(value, key))
    return errors


def _validate_duration(annotations: Mapping[str, str], names: tuple[str, ...], *, minimum: float = 0.0,
                       whole_seconds: bool) -> FieldError:
    """A duration annotation within [minimum, 1h]; the window and scale-down-delay in whole seconds."""
    found = get(annotations, names)
    if not found:
        return FieldError()
    key, value = found
    seconds = _duration(value)
    if seconds is None:
        return err_invalid_value(value, key)
    if not minimum <= seconds <= WINDOW_MAX_SECONDS:
        return err_out_of_bounds_value(value, format_duration(minimum), format_duration(WINDOW_MAX_SECONDS), key)
    if whole_seconds and round(seconds) != seconds:
        return err_generic("must be specified with at most second precision", key)
    return FieldError()


def _validate_min_max_scale(annotations: Mapping[str, str], config: AutoscalerConfig) -> FieldError:
    minimum, errors_min = _int_ge0(annotations, MIN_SCALE)
    maximum, errors_max = _int_ge0(annotations, MAX_SCALE)
    errors = FieldError().also(errors_min, errors_max)
    if maximum != 0 and maximum < minimum:
        errors = errors.also(FieldError(
            f"max-scale={maximum} is less than min-scale={minimum}", (MAX_SCALE[0], MIN_SCALE[0])))
    found_max = get(annotations, MAX_SCALE)
    if found_max and config.max_scale_limit != 0:
        key = found_max[0]
        if maximum > config.max_scale_limit:
            errors = errors.also(err_out_of_bounds_value(maximum, 1, config.max_scale_limit, key))
        if maximum == 0:
            errors = errors.also(FieldError(
                f"max-scale=0 (unlimited), must be less than {config.max_scale_limit}", (key,)))
    found = get(annotations, ACTIVATION_SCALE)
    if found:
        key, value = found
        if not _INT.match(value) or not -(2**31) <= int(value) <= _INT32_MAX:
            errors = errors.also(err_invalid_value(value, key))
        else:
            activation = int(value)
            if minimum > activation:
                errors = errors.also(FieldError(f"min-scale={minimum} is greater than activation-scale={activation}", (key,)))
            elif maximum < activation and maximum != 0:
                errors = errors.also(FieldError(f"max-scale={maximum} is less than activation-scale={activation}", (key,)))
            elif activation < 2:
                errors = errors.also(FieldError(f"activation-scale={activation} must be greater than 1", (key,)))
    return errors


def _validate_metric(annotations: Mapping[str, str], config: AutoscalerConfig) -> FieldError:
    found = get(annotations, METRIC)
    if not found:
        return FieldError()
    metric = found[1]
    found_class = get(annotations, CLASS)
    autoscaler_class = found_class[1] if found_class else config.pod_autoscaler_class
    if autoscaler_class == KPA_CLASS:
        if metric in ("concurrency", "rps"):
            return FieldError()
    elif autoscaler_class == HPA_CLASS:
        if metric != "":
            return FieldError()
    else:
        return FieldError()
    return err_invalid_value(metric, METRIC[0])


def _validate_initial_scale(annotations: Mapping[str, str], config: AutoscalerConfig) -> FieldError:
    found = get(annotations, INITIAL_SCALE)
    if not found:
        return FieldError()
    key, value = found
    if not _INT.match(value):
        return err_invalid_value(value, key)
    number = int(value)
    if number < 0:
        return err_invalid_value(value, key + " must be greater than 0")
    if not config.allow_zero_initial_scale and number == 0:
        return err_invalid_value(value, key + "=0 not allowed by cluster")
    return FieldError()


def validate_has_no_autoscaling_annotation(annotations: Mapping[str, str] | None) -> FieldError:
    """Autoscaling annotations belong on ``spec.template.metadata.annotations`` only."""
    errors = FieldError()
    for key in sorted(annotations or {}):
        if key.startswith(GROUP):
            errors = errors.also(FieldError(
                f"invalid key name \"{key}\"", ("",),
                'autoscaling annotations must be put under "spec.template.metadata.annotations" to work'))
    return errors
