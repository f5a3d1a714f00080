"""The esp32c6 skeleton: rendered, checked by PlatformIO's config parser and the RISC-V cross compiler.
It cannot be built here (PlatformIO's registry is unreachable); those tests are board/network tests."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from hostside.boards import load_board
from hostside.codegen import render_firmware


@pytest.fixture
def c6_project(small_model, tmp_path):
    return render_firmware(small_model[1], load_board("esp32c6"), tmp_path / "c6"), small_model[1]


def test_project_files(c6_project):
    r, art = c6_project
    d = Path(r["dir"])
    for f in ("platformio.ini", "partitions.csv", "CMakeLists.txt", "sdkconfig.defaults", "src/CMakeLists.txt",
              "src/platform_espidf.c", "src/model.c", "src/app.c", "src/platform.h"):
        assert (d / f).is_file(), f
        assert art.model_sha256 in (d / f).read_text().splitlines()[0], f"{f} is not stamped"
    ini = (d / "platformio.ini").read_text()
    assert "platform = espressif32" in ini and "board = esp32-c6-devkitc-1" in ini and "framework = espidf" in ini
    csv = (d / "partitions.csv").read_text()
    assert "model, data, 0x40, 0x110000, 0x10000," in csv          # sized from the artifact: 64 KB pages
    port = (d / "src/platform_espidf.c").read_text()
    for api in ("app_main", "xTaskCreate", "esp_partition_read", "esp_cpu_get_cycle_count",
                "uxTaskGetStackHighWaterMark", "heap_caps_get_minimum_free_size"):
        assert api in port


def test_pio_project_config_accepts(c6_project):
    import sys
    pio = shutil.which("pio", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    if pio is None:
        pytest.skip("PlatformIO not installed (make venv installs it)")
    p = subprocess.run([pio, "project", "config", "-d", c6_project[0]["dir"]], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "espressif32" in p.stdout


@pytest.mark.emulator
def test_portable_part_compiles_for_rv32imac_with_werror(c6_project):
    d = Path(c6_project[0]["dir"]) / "src"
    srcs = [str(f) for f in sorted(d.glob("*.c")) if f.name != "platform_espidf.c"]
    assert {"app.c", "kernels_rv32.c", "runtime.c", "telemetry.c", "model.c"} <= {Path(f).name for f in srcs}
    b = load_board("esp32c6")
    p = subprocess.run(["riscv64-unknown-elf-gcc", *b.cflags, "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror",
                        "-ffreestanding", "-fsyntax-only", "-I", str(d), *srcs], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


def test_espidf_port_typechecks_against_idf_headers(c6_project):
    """The ESP-IDF port against real ESP-IDF headers (IDF_PATH: one tree, or several separated by ':')."""
    idf = os.environ.get("IDF_PATH")
    if not idf:
        pytest.skip("set IDF_PATH to an ESP-IDF tree (git archive <tag> components) to type-check the ESP-IDF "
                    "port; tools/idf_typecheck.py and shared/TOOLCHAIN.md say how")
    if not Path("/usr/include/newlib/stdio.h").is_file():
        pytest.skip("the type check needs Debian's newlib headers: sudo apt-get install libnewlib-dev")
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
    from idf_typecheck import check
    for tree in idf.split(":"):
        p = check(Path(tree), Path(c6_project[0]["dir"]) / "src")
        assert p.returncode == 0, f"{tree}:\n{p.stderr[-3000:]}"


def test_ina226_registers_from_board_file():
    from hostside.codegen.project import ina226_params
    p = ina226_params(load_board("esp32c6"))
    assert p["ina226"] == 1 and p["ina226_cal"] == 512          # 0.00512 / (100 µA · 0.1 Ω)
    assert ina226_params(load_board("rv32-virt"))["ina226"] == 0


@pytest.mark.board
def test_pio_run_builds(c6_project):
    p = subprocess.run(["pio", "run", "-d", c6_project[0]["dir"]], timeout=1800)
    assert p.returncode == 0
