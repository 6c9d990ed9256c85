# rv32imac on qemu-system-riscv32 -M virt: Debian's riscv64-unknown-elf-gcc.
# No FPU: the forward pass runs in fixed point (FIXED_POINT=1, core/fixed.h,
# HELLO capability bit 5), so no soft-float routine is on its hot path; what
# float remains (sampling at temperature > 0) goes through libgcc's soft-float
# routines (IEEE, round to nearest even), sqrt through core/fsqrt.c.
# FIXED_POINT=0 on the command line builds the f32 forward pass instead.
# Compiling needs _zicsr
# for the CSR instructions, but GCC then finds no matching multilib, so the
# link names the plain ISA to get libgcc from rv32imac/ilp32.
CROSS := riscv64-unknown-elf-
ARCH := -march=rv32imac_zicsr -mabi=ilp32 -mcmodel=medany
LINK_ARCH := -march=rv32imac -mabi=ilp32
SOFT_SQRT := 1
FIXED_POINT ?= 1
PORT_SRC += ports/common/ina226_standin.c
# A token takes ~12 ms here (fixed point, demo model; ~110 ms in soft float):
# the ring holds 256 ms of 1 kHz INA samples.
ARCH += -DTP_POWER_RING=256
# Fixed-point kernels unrolled for RV32 by default, KERNELS=portable for the plain loops.
KERNEL_VARIANTS := rv32 portable
KERNELS ?= rv32
