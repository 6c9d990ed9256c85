# ESP32-C3 (RV32IMC, no FPU), bare metal: Debian's riscv64-unknown-elf-gcc,
# then esptool's elf2image. The forward pass runs in fixed point
# (FIXED_POINT=1, like riscv-virt; HELLO capability bit 5); the little float
# left (sampling at temperature > 0) is soft float from libgcc (rv32im/ilp32
# multilib: the compressed encoding does not change the code's behaviour),
# sqrt from core/fsqrt.c. The link names the plain ISA so GCC picks that multilib.
CROSS := riscv64-unknown-elf-
ARCH := -march=rv32imc_zicsr -mabi=ilp32 -mcmodel=medany
LINK_ARCH := -march=rv32imc -mabi=ilp32
SOFT_SQRT := 1
FIXED_POINT ?= 1

# The serial link: uart0 (ROM routines; boards with a USB-UART bridge) or usb
# (the chip's USB-Serial-JTAG port). Build the two into different BUILD_DIRs.
C3_CONSOLE ?= uart0
ifeq ($(C3_CONSOLE),usb)
ARCH += -DTP_C3_USB_SERIAL_JTAG=1
else ifneq ($(C3_CONSOLE),uart0)
$(error C3_CONSOLE must be uart0 or usb, not $(C3_CONSOLE))
endif

# esptool: the project's virtualenv has it (pip install esptool otherwise).
# image-info re-reads the image and must find its checksum and SHA-256 valid.
PYTHON ?= $(firstword $(wildcard ../.venv/bin/python) python3)
ESPTOOL ?= $(PYTHON) -m esptool --chip esp32c3
ESP_FLASH_ARGS := --flash-mode dio --flash-freq 80m --flash-size 4MB

EXTRA_OUTPUTS := $(BUILD_DIR)/firmware.bin

$(BUILD_DIR)/firmware.bin: $(BUILD_DIR)/firmware.elf
	$(ESPTOOL) elf2image $(ESP_FLASH_ARGS) -o $@ $<
	$(ESPTOOL) image-info $@ > $(BUILD_DIR)/image-info.txt
	@grep -q 'Validation hash: .*(valid)' $(BUILD_DIR)/image-info.txt && \
	 grep -q 'Checksum: .*(valid)' $(BUILD_DIR)/image-info.txt && \
	 ! grep -qi 'invalid' $(BUILD_DIR)/image-info.txt || \
	 { cat $(BUILD_DIR)/image-info.txt; rm -f $@; echo 'esptool image-info: image not valid'; exit 1; }
# Fixed-point kernels unrolled for RV32 by default, KERNELS=portable for the plain loops.
KERNEL_VARIANTS := rv32 portable
KERNELS ?= rv32
