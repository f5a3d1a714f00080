# pqlr — the user's front door. Every target bootstraps what it needs (venv + Debian tools).
#   make demo                 corpus → train → int8 → model.bin → C → QEMU RV32IMAC board → report
#   make test                 the test suite (no board needed; emulator tests use QEMU)
#   make flash BOARD=esp32c6 PORT=/dev/ttyACM0
#   make build-c6             a real ESP32-C6 image offline: ESP-IDF's idf.py + Debian's RISC-V gcc
#   make bench BOARD=rv32-virt
SHELL := /bin/bash
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
BOARD  ?= rv32-virt
PORT   ?=
OUT    ?= build
STAMP  := $(VENV)/.pqlr-installed
DEBS_STAMP := build/.debs-ok

.PHONY: build-c6 demo test flash bench bench-kernels bench-memory bench-quality bench-compression bench-transformer bench-training bench-reference render clean distclean deps debs venv help

help:
	@sed -n '2,7p' Makefile

deps: debs venv

# Debian tools: RISC-V cross gcc, QEMU, espeak-ng. Installed when root, otherwise the exact line is printed.
debs: $(DEBS_STAMP)
$(DEBS_STAMP): tools/ensure_debs.sh
	@bash tools/ensure_debs.sh
	@mkdir -p build && touch $@

# The venv: torch==2.13.0 (CPU wheel) first, so nothing can pull a CUDA build, then the project, editable.
venv: $(STAMP)
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[test,platformio,speech,farm,import]'
	@touch $@

demo: deps
	$(BIN)/pqlr demo --board $(BOARD) --out $(OUT)/demo

test: deps
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

render: deps
	$(BIN)/pqlr render --board $(BOARD) --model $(OUT)/demo/model.bin --out $(OUT)/fw/$(BOARD)

flash: deps
	$(BIN)/pqlr build --board $(BOARD) --model $(OUT)/demo/model.bin --out $(OUT)/fw/$(BOARD)
	$(BIN)/pqlr flash --board $(BOARD) --model $(OUT)/demo/model.bin --fw $(OUT)/fw/$(BOARD) $(if $(PORT),--port $(PORT),)

# A real ESP32-C6 bootloader + app + partition table with ESP-IDF's own build and Debian's toolchain
# (tools/idf_offline; shared facts in docs/hardware.md). ESP-IDF comes from IDF_PATH, or is cloned at a pinned
# release into $(OUT)/esp-idf. MODEL: the model.bin to build in (default: the demo's).
IDF_TREE ?= $(if $(IDF_PATH),$(IDF_PATH),$(OUT)/esp-idf)
MODEL    ?= $(OUT)/demo/model.bin
build-c6: deps
	@bash tools/get_esp_idf.sh $(IDF_TREE)
	@bash tools/idf_offline/setup.sh $(IDF_TREE) $(OUT)/idf-offline
	source $(OUT)/idf-offline/env.sh && $(BIN)/pqlr build --board esp32c6 --model $(MODEL) --out $(OUT)/fw/esp32c6

bench: deps
	$(BIN)/pqlr bench --board $(BOARD) --model $(OUT)/demo/model.bin --out $(OUT)/bench/$(BOARD) $(if $(PORT),--port $(PORT),) $(if $(PLACE),--place $(PLACE),)

# benchmarks (recorded results live beside each script in benchmarks/)
bench-kernels: deps
	$(BIN)/python benchmarks/kernels/run.py

bench-memory: deps
	$(BIN)/python benchmarks/memory/run.py

bench-quality: deps      # what `make demo` deploys, 3 seeds, fp32 and INT4 (about 2.5 h on 2 cores: attempts.md §49)
	$(BIN)/python benchmarks/quality/run.py --demo

bench-compression: deps
	$(BIN)/python benchmarks/compression/run.py

bench-transformer: deps
	$(BIN)/python benchmarks/transformer/run.py

bench-training: deps    # pqlr train's loop on the demo's corpus (`make demo` first)
	$(BIN)/python benchmarks/training/run.py --corpus $(OUT)/demo/corpus --repeat 5

bench-reference: deps   # the numpy integer reference's time per input (`make demo` first)
	$(BIN)/python benchmarks/reference/run.py --model $(OUT)/demo/model.bin

clean:
	rm -rf build .pytest_cache .hypothesis

distclean: clean
	rm -rf $(VENV) *.egg-info
