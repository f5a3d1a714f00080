#!/usr/bin/env python3
"""Type-check the rendered ESP-IDF port against real ESP-IDF headers, without the ESP-IDF toolchain.

    python tools/idf_typecheck.py --idf /path/to/esp-idf --src build/fw/esp32c6/src

Runs riscv64-unknown-elf-gcc -fsyntax-only over the port with the include directories an ESP32-C6 build
would use, a minimal sdkconfig.h, and Debian's newlib headers (libnewlib-dev) for the C library. It
catches wrong argument counts, misspelled APIs, wrong struct fields and handle types; it cannot catch
link errors, build-system errors or Kconfig branches not configured here (shared/TOOLCHAIN.md).
Exit status 0 when the port type-checks; the compiler's messages otherwise.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SDKCONFIG_H = """/* minimal sdkconfig.h for type-checking an esp32c6 app (pqlr tools/idf_typecheck.py) */
#pragma once
#define CONFIG_IDF_TARGET "esp32c6"
#define CONFIG_IDF_TARGET_ESP32C6 1
#define CONFIG_IDF_TARGET_ARCH_RISCV 1
#define CONFIG_IDF_TARGET_ARCH "riscv"
#define CONFIG_IDF_FIRMWARE_CHIP_ID 0x000D
#define CONFIG_SOC_CPU_CORES_NUM 1
#define CONFIG_FREERTOS_HZ 1000
#define CONFIG_FREERTOS_UNICORE 1
#define CONFIG_FREERTOS_NUMBER_OF_CORES 1
#define CONFIG_FREERTOS_MAX_TASK_NAME_LEN 16
#define CONFIG_FREERTOS_TASK_NOTIFICATION_ARRAY_ENTRIES 1
#define CONFIG_FREERTOS_IDLE_TASK_STACKSIZE 1536
#define CONFIG_FREERTOS_ISR_STACKSIZE 1536
#define CONFIG_FREERTOS_TIMER_TASK_STACK_DEPTH 2048
#define CONFIG_FREERTOS_TIMER_QUEUE_LENGTH 10
#define CONFIG_FREERTOS_TIMER_TASK_PRIORITY 1
#define CONFIG_FREERTOS_QUEUE_REGISTRY_SIZE 0
#define CONFIG_FREERTOS_THREAD_LOCAL_STORAGE_POINTERS 1
#define CONFIG_FREERTOS_TICK_SUPPORT_SYSTIMER 1
#define CONFIG_FREERTOS_CHECK_STACKOVERFLOW_CANARY 1
#define CONFIG_FREERTOS_USE_TIMERS 1
#define CONFIG_FREERTOS_TIMER_SERVICE_TASK_NAME "Tmr Svc"
#define CONFIG_FREERTOS_PORT 1
#define CONFIG_FREERTOS_SUPPORT_STATIC_ALLOCATION 1
#define CONFIG_FREERTOS_IDLE_TIME_BEFORE_SLEEP 3
#define CONFIG_LOG_DEFAULT_LEVEL 2
#define CONFIG_LOG_MAXIMUM_LEVEL 3
#define CONFIG_LOG_TIMESTAMP_SOURCE_RTOS 1
#define CONFIG_LOG_VERSION_1 1
#define CONFIG_LOG_VERSION 1
#define CONFIG_NEWLIB_STDOUT_LINE_ENDING_CRLF 1
#define CONFIG_LIBC_NEWLIB 1
#define CONFIG_ESP_CONSOLE_USB_SERIAL_JTAG 1
#define CONFIG_ESP_DEFAULT_CPU_FREQ_MHZ 160
#define CONFIG_ESP_SYSTEM_SINGLE_CORE_MODE 1
#define CONFIG_ESP_TASK_WDT_TIMEOUT_S 30
#define CONFIG_ESP_MAIN_TASK_STACK_SIZE 3584
#define CONFIG_ESP_INT_WDT_TIMEOUT_MS 300
#define CONFIG_ESP_TIMER_TASK_STACK_SIZE 3584
#define CONFIG_PARTITION_TABLE_OFFSET 0x8000
#define CONFIG_MMU_PAGE_SIZE 0x10000
#define CONFIG_MMU_PAGE_MODE "64KB"
#define CONFIG_HEAP_POISONING_DISABLED 1
#define CONFIG_XTAL_FREQ 40
#define CONFIG_XTAL_FREQ_40 1
"""


# Between IDF's headers and Debian's newlib (searched after IDF's sys/reent.h include_next's into it):
# newlib 3.3 declares `_global_impure_ptr` const, IDF declares it without; rename newlib's declaration.
NEWLIB_SHIMS = {
    "sys/reent.h": "#define _global_impure_ptr __pqlr_newlib_const_global_impure_ptr\n"
                   "#include_next <sys/reent.h>\n"
                   "#undef _global_impure_ptr\n",
}


def include_dirs(idf: Path) -> list[Path]:
    c = idf / "components"
    cands = [
        "freertos/config/include", "freertos/config/include/freertos", "freertos/config/riscv/include",
        "freertos/FreeRTOS-Kernel/include", "freertos/FreeRTOS-Kernel/portable/riscv/include",
        "freertos/FreeRTOS-Kernel/portable/riscv/include/freertos", "freertos/esp_additions/include",
        "freertos/esp_additions/include/freertos", "freertos/esp_additions/arch/riscv/include",
        "esp_hw_support/include", "esp_hw_support/include/soc", "esp_hw_support/port/esp32c6/include",
        "esp_hw_support/port/esp32c6/private_include", "esp_hw_support/etm/include", "esp_hw_support/dma/include",
        "esp_hw_support/ldo/include", "esp_hw_support/debug_probe/include",
        "esp_hw_support/mspi_timing_tuning/include", "esp_hw_support/power_supply/include",
        "soc/include", "soc/esp32c6/include", "soc/esp32c6/register", "soc/esp32c6",
        "riscv/include", "esp_common/include", "esp_rom/include", "esp_rom/esp32c6/include",
        "esp_rom/esp32c6/include/esp32c6", "esp_rom/esp32c6", "heap/include", "esp_system/include", "log/include",
        "esp_partition/include", "esp_timer/include", "hal/include", "hal/esp32c6/include",
        "hal/platform_port/include", "esp_hal_gpio/include", "esp_hal_i2c/include", "esp_hal_gpio/esp32c6/include",
        "esp_hal_i2c/esp32c6/include", "esp_driver_i2c/include", "esp_driver_usb_serial_jtag/include",
        "esp_driver_gpio/include", "driver/include", "driver/usb_serial_jtag/include", "driver/i2c/include",
        "newlib/platform_include", "esp_libc/platform_include", "esp_blockdev/include", "spi_flash/include",
        "esp_mm/include", "bootloader_support/include", "efuse/include", "efuse/esp32c6/include",
        "esp_pm/include", "esp_hal_mspi/include", "esp_hal_usb/include", "esp_hal_timg/include",
        "esp_hal_systimer/include", "esp_hal_wdt/include", "esp_hal_clock/include",
        "esp_hal_clock/esp32c6/include", "esp_hal_security/include", "vfs/include", "esp_hal_gpspi/include",
        "esp_hal_ana_conv/include", "esp_hal_pmu/include", "esp_hal_pmu/esp32c6/include", "esp_hal_lp_sys/include",
    ]
    return [c / d for d in cands if (c / d).is_dir()]


def check(idf: Path, src: Path, files: list[str] | None = None) -> subprocess.CompletedProcess:
    cc = shutil.which("riscv64-unknown-elf-gcc")
    if cc is None:
        raise SystemExit("riscv64-unknown-elf-gcc not found: sudo apt-get install gcc-riscv64-unknown-elf")
    if not Path("/usr/include/newlib/stdio.h").is_file():
        raise SystemExit("newlib headers not found: sudo apt-get install libnewlib-dev")
    with tempfile.TemporaryDirectory() as d:
        cfg = Path(d) / "config"
        cfg.mkdir()
        (cfg / "sdkconfig.h").write_text(SDKCONFIG_H)
        shim = Path(d) / "newlib-shim"
        for rel, text in NEWLIB_SHIMS.items():
            (shim / rel).parent.mkdir(parents=True, exist_ok=True)
            (shim / rel).write_text(text)
        incs = [f"-I{cfg}", f"-I{src}"] + [f"-I{p}" for p in include_dirs(idf)]
        incs += ["-isystem", str(shim), "-isystem", "/usr/include/newlib"]
        cmd = [cc, "-fsyntax-only", "-std=gnu17", "-march=rv32imac", "-misa-spec=2.2", "-mabi=ilp32",
               "-ffreestanding", "-DESP_PLATFORM", "-DIDF_VER=\"typecheck\"",
               "-Wall", "-Werror=implicit-function-declaration", "-Werror=incompatible-pointer-types",
               "-Werror=int-conversion", "-Werror=implicit-int", *incs,
               *[str(src / f) for f in (files or ["platform_espidf.c"])]]
        return subprocess.run(cmd, capture_output=True, text=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--idf", type=Path, required=True, help="an ESP-IDF tree (its components/ folder is used)")
    ap.add_argument("--src", type=Path, required=True, help="the rendered project's src/ folder")
    args = ap.parse_args()
    p = check(args.idf, args.src)
    sys.stdout.write(p.stdout + p.stderr)
    print("type-check:", "passed" if p.returncode == 0 else "FAILED")
    return p.returncode


if __name__ == "__main__":
    sys.exit(main())
