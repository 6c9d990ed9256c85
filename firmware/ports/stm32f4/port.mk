# STM32F405 (Cortex-M4F, hard float): arm-none-eabi-gcc from Debian.
CROSS := arm-none-eabi-
ARCH := -mcpu=cortex-m4 -mthumb -mfpu=fpv4-sp-d16 -mfloat-abi=hard
PORT_SRC += ports/common/ina226_standin.c ports/common/systick.c
# Cortex-M4F has the DSP extension: SMLAD/SXTB16 kernels by default,
# KERNELS=portable for the plain C ones.
KERNEL_VARIANTS := dsp portable
KERNELS ?= dsp
