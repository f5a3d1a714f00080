"""The PPK2 path of `pqlr bench`. A PPK2 is an instrument this machine does not have, so it is replaced by
FakePpk2Api, named so: it answers the ppk2-api calls pqlr makes with a known current."""

from hostside import api
from hostside.artifact import write_model_bin
from hostside.boards import load_board
from hostside.device.ppk2 import Ppk2Sampler
from hostside.plan import make_plan

from conftest import random_graph


class FakePpk2Api:
    """Stands in for ppk2_api.PPK2_API: 2.5 mA, in batches of 100 samples (µA)."""

    def __init__(self):
        self.calls = []

    def get_modifiers(self):
        self.calls.append("get_modifiers")

    def use_ampere_meter(self):
        self.calls.append("use_ampere_meter")

    def start_measuring(self):
        self.calls.append("start_measuring")

    def stop_measuring(self):
        self.calls.append("stop_measuring")

    def get_data(self):
        return b"\0" * 400

    def get_samples(self, data):
        return [2500.0] * 100, []


def test_sampler_averages_and_traces():
    fake = FakePpk2Api()
    with Ppk2Sampler("", api=fake) as s:
        import time
        time.sleep(0.05)
    assert s.mean_ma() == 2.5 and s.trace_ma() and set(s.trace_ma()) == {2.5}
    assert fake.calls[:3] == ["get_modifiers", "use_ampere_meter", "start_measuring"]
    assert fake.calls[-1] == "stop_measuring"


def test_bench_reports_ppk2_current_on_the_host_board(tmp_path):
    _, g, _ = random_graph(2, input_shape=(12, 8), channels=6, blocks=2)
    board = load_board("host")
    write_model_bin(tmp_path / "model.bin", g, make_plan(g, board))
    rep = api.bench(board, tmp_path / "model.bin", tmp_path / "bench", runs=3, ppk2_api=FakePpk2Api())["report"]
    cur = rep["current_ma"]
    assert cur["value"] == 2.5 and cur["provenance"] == "measured" and "PPK2" in cur["source"]
    assert rep["energy_per_inference_mj"]["value"] is None           # the host board has no supply_v
    assert (tmp_path / "bench" / "current.png").is_file()
