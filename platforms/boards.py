"""Board profiles: what a board is, as data.

A new board is one row here, holding every fact of the board: core (whose
facts are in platforms/cores.py), clock, memory regions, flash read bandwidth,
the USB bridges that front it (platforms/usb_bridges.py), its firmware port
(or None and why not), flasher defaults and the power model. Chip-family
behaviour (how to flash, reset, emulate) lives in the family's adapter module,
never in this table's users.
`--device` takes a board name, an alias, or a family name (which picks the
family's first row, its default board).
"""

from __future__ import annotations

from dataclasses import dataclass

from platforms.cores import CoreProfile, core_of
from platforms.usb_bridges import (
    CP210X,
    ESP_BRIDGES,
    ESP_USB_SERIAL_JTAG,
    FT2232,
    RISCV_BRIDGES,
    STLINK_V2_1,
    STLINK_V3_NO_MSD,
    STLINK_V3E,
    STM32_BRIDGES,
    UsbBridge,
    with_first,
)
from profiler.errors import ConfigError

KB = 1024
MB = 1024 * 1024


DEFAULT_BAUD = 115200  # every profiler firmware's UART speed unless its row says otherwise


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
    firmware_port: str | None  # a directory of firmware/ports, or None with `no_port_reason`
    baud: int = DEFAULT_BAUD
    reset_method: str = "probe"  # probe | dtr-rts | usb-jtag | manual | none (emulator only)
    flasher: str = ""  # the family adapter's default flasher for this board
    no_port_reason: str = ""
    usb_bridges: tuple[UsbBridge, ...] = ()  # the board's own devkit bridge first
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
    # Sustained sequential read bandwidth of the memory the model is read from (the bandwidth ceiling of
    # `model inspect` and the roofline), and where the figure comes from.
    flash_read_bytes_per_s: float | None = None
    flash_read_note: str = "flash bandwidth unknown for this board"
    # Power and thermal model, used where nothing measures them (emulated boards): see
    # profiler/emulated_telemetry.py. Run and sleep power at the supply, junction-to-ambient
    # resistance of the package, and an assumed thermal time constant of board and package.
    supply_mv: int = 3300
    active_mw: float | None = None
    idle_mw: float | None = None
    ambient_c: float = 25.0
    thermal_resistance_c_per_w: float = 50.0
    thermal_time_constant_s: float = 20.0

    @property
    def core_facts(self) -> CoreProfile:
        """The core's row of platforms/cores.py."""
        return core_of(self.core)


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
        usb_bridges=with_first(STLINK_V2_1, STM32_BRIDGES),  # ST-LINK/V2-1 on Nucleo boards
        qemu_machine="netduinoplus2",
        aliases=("stm32", "netduinoplus2"),
        flash_base=0x0800_0000,
        firmware_addr=0x0800_0000,
        flash_target="stm32f405rgtx",  # pyOCD: `pyocd pack install stm32f405rg` first
        flash_accelerator="stm32f4-art",  # RM0090: 5 wait states at 168 MHz behind the ART accelerator
        flash_read_bytes_per_s=16 / 6 * 168e6,
        flash_read_note="128-bit flash line per 6 cycles (5 wait states at 168 MHz)",
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
        firmware_port=None,
        no_port_reason="no STM32H7 port yet; its Cortex-M7 runs emulated as mps2-an500 (--device m7 --emulate)",
        reset_method="probe",
        flasher="pyocd",
        usb_bridges=with_first(STLINK_V3E, STM32_BRIDGES),  # STLINK-V3E on NUCLEO-H743ZI2
        aliases=("nucleo-h743zi",),
        flash_base=0x0800_0000,
        firmware_addr=0x0800_0000,
        flash_target="stm32h743xx",
        openocd_config=("interface/stlink.cfg", "target/stm32h7x.cfg"),
        flash_read_bytes_per_s=32 / 5 * 240e6,
        flash_read_note="256-bit flash line per 5 AXI cycles at 240 MHz",
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
        firmware_port=None,
        no_port_reason="no STM32N6 port yet; its Cortex-M55 runs emulated as mps3-an547 (--device m55 --emulate)",
        reset_method="probe",
        flasher="pyocd",  # through ST's STM32N6 pack and its external-flash algorithm
        usb_bridges=with_first(STLINK_V3_NO_MSD, STM32_BRIDGES),  # STLINK-V3EC on NUCLEO-N657X0-Q
        aliases=("nucleo-n657x0-q", "stm32n6"),
        flash_base=0x7000_0000,
        firmware_addr=0x7000_0000,
        flash_target="stm32n657x0hxq",
        flash_read_bytes_per_s=400e6,
        flash_read_note="external octo-SPI NOR, octal DTR at 200 MHz (XSPI2), memory-mapped",
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
        flash_read_bytes_per_s=32 / 5 * 240e6,
        flash_read_note="modelled: the stm32h743's flash (QEMU's SSRAM has no limit)",
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
        flash_read_bytes_per_s=400e6,
        flash_read_note="modelled: the stm32n657's octo-SPI NOR (QEMU's DDR has no limit)",
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
        usb_bridges=with_first(CP210X, ESP_BRIDGES),  # CP2102 on ESP32-DevKitC
        flash_read_bytes_per_s=40e6,
        flash_read_note="external SPI flash, quad I/O at 80 MHz, through the cache",
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
        usb_bridges=with_first(ESP_USB_SERIAL_JTAG, ESP_BRIDGES),  # USB-Serial-JTAG on ESP32-S3-DevKitC-1 N8R8
        flash_read_bytes_per_s=40e6,
        flash_read_note="external SPI flash, quad I/O at 80 MHz, through the cache",
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
        # CP2102N on ESP32-C3-DevKitM-1 (the firmware's console is UART0)
        usb_bridges=with_first(CP210X, ESP_BRIDGES),
        flash_read_bytes_per_s=40e6,
        flash_read_note="external SPI flash, quad I/O at 80 MHz, through the cache",
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
        flash_read_bytes_per_s=4 * 125e6,
        flash_read_note="modelled: one 32-bit load a cycle from pflash",
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
        firmware_port=None,
        no_port_reason="no GD32VF103 port yet; its rv32imac core runs emulated as the riscv row (--device riscv)",
        reset_method="probe",
        flasher="openocd",
        usb_bridges=with_first(FT2232, RISCV_BRIDGES),  # FT2232 JTAG probe (Sipeed RV-Debugger)
        flash_read_bytes_per_s=4 / 3 * 108e6,
        flash_read_note="32-bit flash word per 3 cycles (2 wait states at 108 MHz)",
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
