"""The esp32c6 project: an ESP-IDF project (main/ component) that PlatformIO also builds, rendered from the
board file; checked by PlatformIO's config parser, the RISC-V cross compiler and, where IDF_PATH is set, ESP-IDF's
own partition-table generator. The full image build is tests/test_c6_image.py."""
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
    for f in ("platformio.ini", "partitions.csv", "CMakeLists.txt", "sdkconfig.defaults", "main/CMakeLists.txt",
              "main/platform_espidf.c", "main/model.c", "main/app.c", "main/platform.h", "pio_flash_model.py"):
        assert (d / f).is_file(), f
        assert art.model_sha256 in (d / f).read_text().splitlines()[0], f"{f} is not stamped"
    ini = (d / "platformio.ini").read_text()
    assert "platform = espressif32" in ini and "board = esp32-c6-devkitc-1" in ini and "framework = espidf" in ini
    assert "src_dir = main" in ini and "extra_scripts = post:pio_flash_model.py" in ini
    assert "build_flags" not in ini                      # flags come from the board file, through CMake
    b = load_board("esp32c6")
    comp = (d / "main/CMakeLists.txt").read_text()
    for need in ("PRIV_REQUIRES", "esp_partition", "esp_driver_usb_serial_jtag", "esp_driver_i2c",
                 f"PRIVATE {b.firmware['optimize']})", 'esptool_py_flash_to_partition(flash "model"'):
        assert need in comp, need
    assert 'CONFIG_IDF_TARGET="esp32c6"' in (d / "sdkconfig.defaults").read_text()
    csv = (d / "partitions.csv").read_text()
    assert "model, 0x40, 0x00, 0x110000, 0x100000," in csv          # custom type, the board file's size
    assert f"PQLR_PARTITION_BYTES {0x100000}u" in (d / "main/model.h").read_text()   # the size model.h uses too
    assert (d / "model.bin").read_bytes() == art.data                # flashed with the app by idf.py and pio
    script = (d / "pio_flash_model.py").read_text()                 # PlatformIO's post-upload step, valid Python
    compile(script, "pio_flash_model.py", "exec")
    assert 'MODEL_OFFSET = "0x110000"' in script and "--chip esp32c6" in script
    port = (d / "main/platform_espidf.c").read_text()
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
    d = Path(c6_project[0]["dir"]) / "main"
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
        p = check(Path(tree), Path(c6_project[0]["dir"]) / "main")
        assert p.returncode == 0, f"{tree}:\n{p.stderr[-3000:]}"


def test_partition_table_is_what_esp_idf_generates(c6_project, tmp_path):
    """ESP-IDF's own gen_esp32part.py, run on the rendered partitions.csv, writes the bytes pqlr's flasher and
    merged image use (needs IDF_PATH)."""
    import sys
    from hostside.device.partitions import table_bin
    idf = os.environ.get("IDF_PATH")
    gen = Path(idf or "/nonexistent") / "components/partition_table/gen_esp32part.py"
    if not gen.is_file():
        pytest.skip("set IDF_PATH to an ESP-IDF tree to check the partition table against gen_esp32part.py")
    out = tmp_path / "pt.bin"
    p = subprocess.run([sys.executable, str(gen), str(Path(c6_project[0]["dir"]) / "partitions.csv"), str(out)],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert out.read_bytes() == table_bin(load_board("esp32c6"))


def test_ina226_registers_from_board_file():
    from hostside.codegen.project import ina226_params
    p = ina226_params(load_board("esp32c6"))
    assert p["ina226"] == 1 and p["ina226_cal"] == 512          # 0.00512 / (100 µA · 0.1 Ω)
    assert ina226_params(load_board("rv32-virt"))["ina226"] == 0


@pytest.mark.board
def test_pio_run_builds(c6_project):
    p = subprocess.run(["pio", "run", "-d", c6_project[0]["dir"]], timeout=1800)
    assert p.returncode == 0
