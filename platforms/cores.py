"""Per-core facts, one row per CPU core a board row names (`BoardProfile.core`).

`macs_per_cycle` is the upper bound on int8 multiply-accumulates a cycle the
core can sustain, the compute ceiling `model inspect` and the roofline state;
it is an assumption from the ISA, labelled as such by its note. `fpu`, `dsp`
(Arm's DSP extension: SMLAD and friends) and `helium` (Arm's M-profile vector
extension) say which kernels the core can run.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CoreProfile:
    """What one CPU core offers the kernels."""

    name: str
    macs_per_cycle: float
    macs_note: str
    fpu: bool  # single-precision hardware floating point
    dsp: bool = False  # Arm DSP extension (SMLAD: two 16-bit MACs a cycle)
    helium: bool = False  # Arm MVE (Helium) vector instructions


_SMLAD = "SMLAD: two 16-bit MACs a cycle on sign-extended int8 pairs"
_RV_MUL = "one MUL a cycle, no MAC or SIMD instruction (the add and loads not counted)"

CORES: dict[str, CoreProfile] = {core.name: core for core in (
    CoreProfile("cortex-m4f", 2.0, _SMLAD, fpu=True, dsp=True),
    CoreProfile("cortex-m4", 2.0, _SMLAD, fpu=False, dsp=True),
    CoreProfile("cortex-m7", 2.0, "SMLAD: two 16-bit MACs a cycle (dual issue not counted)", fpu=True, dsp=True),
    CoreProfile("cortex-m55", 8.0, "Helium VMLADAV: sixteen int8 MACs in two beats", fpu=True, dsp=True,
                helium=True),
    CoreProfile("rv32imc", 1.0, _RV_MUL, fpu=False),
    CoreProfile("rv32imac", 1.0, _RV_MUL, fpu=False),
    CoreProfile("xtensa-lx6", 1.0, "MAC16 unit: one 16-bit MAC a cycle", fpu=True),
    CoreProfile("xtensa-lx7", 16.0, "PIE SIMD (EE.VMULAS.S8): sixteen int8 MACs a cycle", fpu=True),
)}


def core_of(name: str) -> CoreProfile:
    """The core's row; a core not in the table is assumed to do one MAC a cycle, and says so."""
    return CORES.get(name) or CoreProfile(name, 1.0, "assumed one MAC a cycle (core not in the table)", fpu=False)
