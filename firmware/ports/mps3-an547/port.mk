# QEMU mps3-an547: Cortex-M55 with Helium (MVE, integer and float) and its
# FPU, as on the STM32N6; arm-none-eabi-gcc 12 from Debian (-mcpu=cortex-m55
# turns on +mve.fp, and libgcc comes from its v8.1-m.main+mve multilib). The
# port's C is shared with mps2-an500 (ports/common/mps_*.c).
CROSS := arm-none-eabi-
ARCH := -mcpu=cortex-m55 -mthumb -mfloat-abi=hard
PORT_SRC += ports/common/mps_port.c ports/common/mps_startup.c
PORT_SRC += ports/common/ina226_standin.c ports/common/systick.c
# only ever emulated: the INA is always the stand-in (ports/common/systick.c)
$(BUILD_DIR)/obj/ports/common/systick.o: FW_CFLAGS += -DTP_SYSTICK_STANDIN=1
# Helium kernels by default (core/matmul_mve.c, core/forward_mve.c); the
# M4/M7 DSP set and the plain C one also build for this core.
KERNEL_VARIANTS := helium dsp portable
KERNELS ?= helium
