"""Board profiles: what a board is, as data.

A new board is one row here. Chip-family behaviour (how to flash, reset,
emulate) lives in the family's adapter module, never in this table's users.
`--device` takes a board name, an alias, or a family name (which picks the
family's first row, its default board).
"""

from __future__ import annotations

from dataclasses import dataclass

from profiler.errors import ConfigError

KB = 1024
MB = 1024 * 1024


@dataclass(frozen=True)
class BoardProfile:
    """Facts of one board; the session and sinks read these, never board names.

    Addresses are CPU addresses on memory-mapped flash (STM32, GD32) and flash
    offsets on boards whose flash sits behind a SPI controller (ESP32 family).
    """

    name: str
    family: str
    core: str
    clock_hz: int
    sram_bytes: int
    flash_bytes: int
    model_addr: int
    model_region_bytes: int
    firmware_port: str
    baud: int = 115200
    reset_method: str = "probe"  # probe | dtr-rts | usb-jtag | manual | none (emulator only)
    flasher: str = ""  # the family adapter's default flasher for this board
    usb_vid_pid: tuple[int, int] | None = None
    qemu_machine: str | None = None
    aliases: tuple[str, ...] = ()
    flash_base: int = 0
    firmware_addr: int = 0
    psram_bytes: int = 0
    flash_target: str = ""  # the chip as the flasher names it: pyOCD target type, esptool chip
    openocd_config: tuple[str, ...] = ()  # OpenOCD -f scripts: probe interface, then target
    model_partition: str | None = None  # ESP32 family: the data partition that holds the model
    # Flash behind a cache/prefetch unit, for the cycle model (profiler/cycles): "stm32f4-art" or "" (no waits)
    flash_accelerator: str = ""
    # Power and thermal model, used where nothing measures them (emulated boards): see
    # profiler/emulated_telemetry.py. Run and sleep power at the supply, junction-to-ambient
    # resistance of the package, and an assumed thermal time constant of board and package.
    supply_mv: int = 3300
    active_mw: float | None = None
    idle_mw: float | None = None
    ambient_c: float = 25.0
    thermal_resistance_c_per_w: float = 50.0
    thermal_time_constant_s: float = 20.0


BOARDS: tuple[BoardProfile, ...] = (
    BoardProfile(
        name="stm32f405",
        family="stm32",
        core="cortex-m4f",
        clock_hz=168_000_000,
        sram_bytes=128 * KB,
        flash_bytes=1 * MB,
        model_addr=0x0802_0000,
        model_region_bytes=896 * KB,
        firmware_port="stm32f4",
        reset_method="probe",
        flasher="pyocd",
        usb_vid_pid=(0x0483, 0x374B),  # ST-LINK/V2-1 on Nucleo boards
        qemu_machine="netduinoplus2",
        aliases=("stm32", "netduinoplus2"),
        flash_base=0x0800_0000,
        firmware_addr=0x0800_0000,
        flash_target="stm32f405rgtx",  # pyOCD: `pyocd pack install stm32f405rg` first
        flash_accelerator="stm32f4-art",  # RM0090: 5 wait states at 168 MHz behind the ART accelerator
        openocd_config=("interface/stlink.cfg", "target/stm32f4x.cfg"),
        # Datasheet typicals at 168 MHz from flash, peripherals off: run 40 mA, sleep 12 mA; LQFP64 46 °C/W.
        active_mw=132.0,
        idle_mw=39.6,
        thermal_resistance_c_per_w=46.0,
    ),
    BoardProfile(
        name="stm32h743",
        family="stm32",
        core="cortex-m7",
        clock_hz=480_000_000,
        sram_bytes=1024 * KB,
        flash_bytes=2 * MB,
        model_addr=0x0804_0000,
        model_region_bytes=1792 * KB,
        firmware_port="stm32h7",
        reset_method="probe",
        flasher="pyocd",
        usb_vid_pid=(0x0483, 0x374E),  # STLINK-V3E on NUCLEO-H743ZI2
        aliases=("nucleo-h743zi",),
        flash_base=0x0800_0000,
        firmware_addr=0x0800_0000,
        flash_target="stm32h743xx",
        openocd_config=("interface/stlink.cfg", "target/stm32h7x.cfg"),
        # The core of the emulated mps2-an500 board (below). Run ~120 mA at 480 MHz, sleep ~35 mA, 3.3 V.
        active_mw=396.0,
        idle_mw=115.5,
        thermal_resistance_c_per_w=33.0,
    ),
    BoardProfile(
        name="stm32n657",
        family="stm32",
        core="cortex-m55",
        clock_hz=800_000_000,
        sram_bytes=4_325_376,  # 4.125 MB of AXI SRAM; the CPU's AXISRAM1-2 are 2 MB of it
        flash_bytes=128 * MB,  # no internal flash: the NUCLEO/DK boards' octo-SPI NOR, mapped at 0x70000000
        model_addr=0x7100_0000,
        model_region_bytes=64 * MB,
        firmware_port="stm32n6",
        reset_method="probe",
        flasher="pyocd",  # through ST's STM32N6 pack and its external-flash algorithm
        usb_vid_pid=(0x0483, 0x3754),  # STLINK-V3EC on NUCLEO-N657X0-Q
        aliases=("nucleo-n657x0-q", "stm32n6"),
        flash_base=0x7000_0000,
        firmware_addr=0x7000_0000,
        flash_target="stm32n657x0hxq",
        # The core of the emulated mps3-an547 board (below). Assumed run ~100 mA at 800 MHz, sleep ~30 mA, 3.3 V.
        active_mw=330.0,
        idle_mw=99.0,
        thermal_resistance_c_per_w=30.0,
    ),
    BoardProfile(
        name="mps2-an500",
        family="mps",
        core="cortex-m7",
        clock_hz=480_000_000,  # modelled: the STM32H743's clock, for rates at one instruction a cycle
        sram_bytes=512 * KB,  # SSRAM2/3, sized as the H743's AXI SRAM
        flash_bytes=2 * MB,  # SSRAM1 as the H743's flash: firmware, then the model region
        model_addr=0x0004_0000,
        model_region_bytes=1792 * KB,
        firmware_port="mps2-an500",
        reset_method="none",
        qemu_machine="mps2-an500",
        aliases=("m7", "an500", "cortex-m7"),
        flash_base=0x0,
        firmware_addr=0x0,
        active_mw=396.0,  # the stm32h743's figures: the emulated core stands for it
        idle_mw=115.5,
        thermal_resistance_c_per_w=33.0,
    ),
    BoardProfile(
        name="mps3-an547",
        family="mps",
        core="cortex-m55",
        clock_hz=800_000_000,  # modelled: the STM32N657's clock, for rates at one instruction a cycle
        sram_bytes=2 * MB,  # FPGA SRAM 2, sized as the N6's AXISRAM1-2
        flash_bytes=512 * KB + 64 * MB,  # ITCM for the firmware, DDR as the octo-SPI NOR holding the model
        model_addr=0x6000_0000,
        model_region_bytes=64 * MB,
        firmware_port="mps3-an547",
        reset_method="none",
        qemu_machine="mps3-an547",
        aliases=("m55", "an547", "cortex-m55"),
        flash_base=0x6000_0000,
        firmware_addr=0x0,
        active_mw=330.0,  # the stm32n657's figures: the emulated core stands for it
        idle_mw=99.0,
        thermal_resistance_c_per_w=30.0,
    ),
    BoardProfile(
        name="esp32",
        family="esp32",
        core="xtensa-lx6",
        clock_hz=240_000_000,
        sram_bytes=520 * KB,
        flash_bytes=4 * MB,
        model_addr=0x11_0000,
        model_region_bytes=0x2F_0000,
        firmware_port="esp32",  # ESP-IDF project, built with the user's idf.py
        reset_method="dtr-rts",
        flasher="esptool",
        usb_vid_pid=(0x10C4, 0xEA60),  # CP2102 on ESP32-DevKitC
        aliases=("esp32-devkitc",),
        firmware_addr=0x1_0000,
        flash_target="esp32",
        model_partition="model",
    ),
    BoardProfile(
        name="esp32s3",
        family="esp32",
        core="xtensa-lx7",
        clock_hz=240_000_000,
        sram_bytes=512 * KB,
        flash_bytes=8 * MB,
        psram_bytes=8 * MB,
        model_addr=0x11_0000,
        model_region_bytes=0x6F_0000,
        firmware_port="esp32",
        reset_method="dtr-rts",
        flasher="esptool",
        usb_vid_pid=(0x303A, 0x1001),  # USB-Serial-JTAG on ESP32-S3-DevKitC-1 N8R8
        aliases=("esp32-s3",),
        firmware_addr=0x1_0000,
        flash_target="esp32s3",
        model_partition="model",
    ),
    BoardProfile(
        name="esp32c3",
        family="esp32",
        core="rv32imc",
        clock_hz=160_000_000,
        sram_bytes=400 * KB,
        flash_bytes=4 * MB,
        model_addr=0x11_0000,  # the port maps it through the cache MMU (firmware/ports/esp32c3/linker.ld)
        model_region_bytes=0x2F_0000,
        firmware_port="esp32c3",  # bare metal, Debian's RISC-V GCC + esptool elf2image
        reset_method="dtr-rts",
        flasher="esptool",
        usb_vid_pid=(0x10C4, 0xEA60),  # CP2102N on ESP32-C3-DevKitM-1 (the firmware's console is UART0)
        aliases=("esp32-c3", "esp32-c3-devkitm-1"),
        firmware_addr=0x0,
        flash_target="esp32c3",
        model_partition="model",
    ),
    BoardProfile(
        name="riscv",
        family="riscv",
        core="rv32imac",
        clock_hz=125_000_000,  # modelled: one instruction per cycle under -icount shift=3
        sram_bytes=128 * KB,  # modelled SRAM inside the machine's DRAM
        flash_bytes=32 * MB,  # pflash0, where the model is read in place
        model_addr=0x2000_0000,
        model_region_bytes=32 * MB,
        firmware_port="riscv-virt",
        reset_method="none",
        qemu_machine="virt",
        aliases=("riscv-virt", "riscv32-virt"),
        flash_base=0x2000_0000,
        firmware_addr=0x8000_0000,  # code runs from DRAM, where -bios none jumps
        # No chip behind it: a GD32VF103-class part scaled to 125 MHz (run ~30 mA, sleep ~9 mA at 3.3 V).
        active_mw=100.0,
        idle_mw=30.0,
    ),
    BoardProfile(
        name="gd32vf103",
        family="riscv",
        core="rv32imac",
        clock_hz=108_000_000,
        sram_bytes=32 * KB,
        flash_bytes=128 * KB,
        model_addr=0x0801_0000,
        model_region_bytes=64 * KB,
        firmware_port="gd32vf103",
        reset_method="probe",
        flasher="openocd",
        usb_vid_pid=(0x0403, 0x6010),  # FT2232 JTAG probe (Sipeed RV-Debugger)
        aliases=("longan-nano",),
        flash_base=0x0800_0000,
        firmware_addr=0x0800_0000,
        flash_target="gd32vf103",
        openocd_config=("interface/ftdi/minimodule.cfg", "target/gd32vf103.cfg"),
    ),
)


def board_names() -> list[str]:
    """Every name `--device` accepts, board names first."""
    names = [b.name for b in BOARDS] + [alias for b in BOARDS for alias in b.aliases]
    return names + [f for f in families() if f not in names]


def families() -> list[str]:
    """Families that have at least one board, in table order."""
    return list(dict.fromkeys(b.family for b in BOARDS))


def boards_of(family: str) -> list[BoardProfile]:
    """The boards of one family, its default board first."""
    return [b for b in BOARDS if b.family == family]


def resolve_board(name: str) -> BoardProfile:
    """The profile for a board name or alias; a family name picks its default board."""
    wanted = name.strip().lower()
    for board in BOARDS:
        if wanted == board.name or wanted in board.aliases:
            return board
    family = boards_of(wanted)
    if family:
        return family[0]
    raise ConfigError(
        f"unknown device {name!r}; known devices: {', '.join(board_names())}"
    )
