"""tiny-profiler: hardware-in-the-loop profiling of quantized tiny LLMs on microcontrollers."""

__version__ = "0.1.0"
