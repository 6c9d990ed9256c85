"""Power meters (PPK2, Joulescope, and kinds registered elsewhere) and energy from their samples."""

from profiler.power.base import (
    MeterInfo,
    MeterSpec,
    MeterStats,
    PowerBatch,
    PowerMeter,
    PowerSample,
    meter_class,
    open_meter,
    parse_spec,
    register,
    registered_kinds,
)

__all__ = [
    "MeterInfo",
    "MeterSpec",
    "MeterStats",
    "PowerBatch",
    "PowerMeter",
    "PowerSample",
    "meter_class",
    "open_meter",
    "parse_spec",
    "register",
    "registered_kinds",
]
