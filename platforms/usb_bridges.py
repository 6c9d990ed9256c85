"""USB devices a board is reached through: its USB-UART, its debug probe, its ROM bootloader.

Board rows list the bridges that can front them (`BoardProfile.usb_bridges`,
the board's own devkit bridge first); discovery recognises an attached device
by these rows, and guesses its family from the rows that list it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class UsbBridge:
    """A USB VID:PID we recognise (pid None: every product of the vendor)."""

    vid: int
    pid: int | None
    name: str
    role: str  # uart | probe | probe+uart | dfu
    reset_method: str | None = None  # set when the bridge decides how the board behind it is reset


CP210X = UsbBridge(0x10C4, 0xEA60, "Silicon Labs CP210x USB-UART", "uart")
CP2105 = UsbBridge(0x10C4, 0xEA70, "Silicon Labs CP2105 USB-UART", "uart")
CH340 = UsbBridge(0x1A86, 0x7523, "WCH CH340 USB-UART", "uart")
CH9102 = UsbBridge(0x1A86, 0x55D4, "WCH CH9102 USB-UART", "uart")
CH343 = UsbBridge(0x1A86, 0x55D3, "WCH CH343 USB-UART", "uart")
FT232R = UsbBridge(0x0403, 0x6001, "FTDI FT232R USB-UART", "uart")
FT2232 = UsbBridge(0x0403, 0x6010, "FTDI FT2232 (JTAG + UART: ESP-Prog, Sipeed RV-Debugger)", "probe+uart")
FT232H = UsbBridge(0x0403, 0x6014, "FTDI FT232H (JTAG or UART)", "probe+uart")
FT_X = UsbBridge(0x0403, 0x6015, "FTDI FT-X USB-UART", "uart")
ESP_USB_SERIAL_JTAG = UsbBridge(0x303A, 0x1001, "Espressif USB-Serial-JTAG", "probe+uart", reset_method="usb-jtag")
ESP_USB_OTG = UsbBridge(0x303A, 0x0002, "Espressif USB-OTG download mode", "uart")
STLINK_V2 = UsbBridge(0x0483, 0x3748, "ST-LINK/V2", "probe")
STLINK_V2_1 = UsbBridge(0x0483, 0x374B, "ST-LINK/V2-1", "probe+uart")
STLINK_V3E = UsbBridge(0x0483, 0x374E, "STLINK-V3E", "probe+uart")
STLINK_V3 = UsbBridge(0x0483, 0x374F, "STLINK-V3", "probe+uart")
STLINK_V3_2VCP = UsbBridge(0x0483, 0x3753, "STLINK-V3 (two VCPs)", "probe+uart")
STLINK_V3_NO_MSD = UsbBridge(0x0483, 0x3754, "STLINK-V3 (no mass storage)", "probe+uart")
STM32_DFU = UsbBridge(0x0483, 0xDF11, "STM32 ROM DFU bootloader", "dfu")
DAPLINK = UsbBridge(0x0D28, 0x0204, "Arm DAPLink (CMSIS-DAP)", "probe+uart")
JLINK = UsbBridge(0x1366, None, "SEGGER J-Link", "probe")
WCH_LINK_RV = UsbBridge(0x1A86, 0x8010, "WCH-Link (RISC-V mode)", "probe+uart")
WCH_LINK_DAP = UsbBridge(0x1A86, 0x8012, "WCH-Link (CMSIS-DAP mode)", "probe+uart")
GD32_DFU = UsbBridge(0x28E9, 0x0189, "GD32 ROM DFU bootloader", "dfu")

# What fronts the boards of a kind; a row lists its own devkit bridge first, then these.
ESP_BRIDGES = (CP210X, CP2105, CH340, CH9102, CH343, FT232R, FT2232, FT232H, FT_X, ESP_USB_SERIAL_JTAG, ESP_USB_OTG)
STM32_BRIDGES = (STLINK_V2, STLINK_V2_1, STLINK_V3E, STLINK_V3, STLINK_V3_2VCP, STLINK_V3_NO_MSD, STM32_DFU, DAPLINK,
                 JLINK, WCH_LINK_DAP)
RISCV_BRIDGES = (FT232R, FT2232, FT232H, JLINK, WCH_LINK_RV, GD32_DFU)


def with_first(first: UsbBridge, bridges: tuple[UsbBridge, ...]) -> tuple[UsbBridge, ...]:
    """`bridges` with the board's own bridge first."""
    return (first, *[b for b in bridges if b != first])
