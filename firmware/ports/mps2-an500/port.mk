# QEMU mps2-an500: Cortex-M7 with its double-precision FPU (fpv5-d16), as on
# the STM32H7; arm-none-eabi-gcc from Debian. The port's C is shared with
# mps3-an547 (ports/common/mps_*.c).
CROSS := arm-none-eabi-
ARCH := -mcpu=cortex-m7 -mthumb -mfpu=fpv5-d16 -mfloat-abi=hard
PORT_SRC += ports/common/mps_port.c ports/common/mps_startup.c
PORT_SRC += ports/common/ina226_standin.c ports/common/systick.c
# only ever emulated: the INA is always the stand-in (ports/common/systick.c)
$(BUILD_DIR)/obj/ports/common/systick.o: FW_CFLAGS += -DTP_SYSTICK_STANDIN=1
# The M7 has the M4's DSP instructions: the same SMLAD/SXTB16 kernels by
# default, KERNELS=portable for the plain C ones.
KERNEL_VARIANTS := dsp portable
KERNELS ?= dsp
