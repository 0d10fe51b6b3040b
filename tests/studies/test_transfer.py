"""The transfer chapter's study code: a SynthSAEBench-style world as a bench for lrb.run_curves, its statistics,
per-edge absorption frames and the absorption verdict's inputs."""
import pandas as pd
import pytest
import torch

from sdl_paper.data.synthsaebench import SynthConfig, SynthWorld
from sdl_paper.studies import lrb, transfer


@pytest.fixture(scope="module")
def world():
    return SynthWorld(SynthConfig(n=96, n_p=32, roots=1, branching=4, depth=2, orthogonalize_steps=10))


def test_a_bench_holds_a_fixed_training_set_and_an_evaluation_set_with_the_bias(world):
    bench = transfer.SynthBench(world, n_train=512, n_eval=256, seed=0)
    x, x_p = bench.eval_set
    assert x.shape == (256, 96) and torch.allclose(x_p, x @ world.W_p.T + world.b, atol=1e-5)
    assert bench.data.N == 512 and bench.data.directions[0].shape == (32, 96)
    views = transfer.SynthMetrics(bench).views(3, "cpu")
    assert views[1].shape == (3, 256, 32) and torch.equal(views[1][2], x_p)    # every model: the same samples
    assert isinstance(transfer.SynthBench(world, None).data, transfer.SynthSource)   # fresh samples


def test_world_stats_see_the_gating_and_the_control_drops_it(world):
    stats = transfer.world_stats(transfer.SynthBench(world, None, n_eval=4096))
    ctrl = transfer.world_stats(transfer.SynthBench(world.without_hierarchy(), None, n_eval=4096))
    assert stats["edges"] == 20 and stats["child without its parent"] == 0
    assert ctrl["edges"] == 0 and ctrl["mean L0"] != stats["mean L0"]
    matched = transfer.SynthBench(world.without_hierarchy(world.firing_rates(40000, 1)), None, n_eval=4096)
    on_edges = transfer.world_stats(matched, forest_of=world)
    assert on_edges["edges"] == 20 and on_edges["child without its parent"] > 0
    assert abs(on_edges["mean L0"] / stats["mean L0"] - 1) < 0.05


def test_rows_train_on_the_bench_with_the_benchmark_metrics_and_edges_are_scored(world):
    bench = transfer.SynthBench(world, n_train=2048, n_eval=512, seed=0)
    c, st = lrb.run_curves(bench, "TopK SAE", "standard", 48, [0, 1], steps=60, batch_size=64, lr=3e-3, k=4,
                           points=6)
    assert {"F1", "MCC", "uniqueness", "M_GT_enc", "EV"} <= set(c.columns) and c["F1"].between(0, 1).all()
    with pytest.raises(ValueError, match="SAE rows only"):
        lrb.run_curves(bench, "TopK transcoder", "standard", 48, [0, 1], steps=60, batch_size=64, k=4)
    models = transfer.models_of(c)
    assert list(models["seed"]) == [0, 1]
    e = transfer.edge_frame({"TopK SAE": st}, world, {"TopK SAE": models}, n_samples=2048)
    assert len(e) == 2 * len(world.edges()) and set(e["level"]) == {1, 2}
    ctrl = world.without_hierarchy()
    e_c = transfer.edge_frame({"c": st}, ctrl, {"c": models}, pairs=world.edges(), levels=world.level,
                              n_samples=2048)
    assert set(e_c["level"]) == {1, 2} and list(e_c[["parent", "child"]].drop_duplicates().itertuples(
        index=False, name=None)) == world.edges()


def _frame(full_by_seed, name="TopK SAE", value=1e-3):
    return pd.DataFrame([dict(name=name, seed=s, value=value, parent=0, child=c, level=1, full=f, cos=0.0)
                         for s, fulls in full_by_seed.items() for c, f in enumerate(fulls)])


def test_the_absorption_verdict_reads_root_child_edges_per_seed_and_needs_converged_runs():
    edges = _frame({0: [0.9, 0.1], 1: [0.8, 0.2]})
    ctrl = _frame({0: [0.0, 0.0], 1: [0.0, 0.01]}, name="control", value=None)
    judged = pd.DataFrame([dict(row="TopK SAE", value=1e-3, status="converged")])
    steps = [0, 10, 20, 30]
    flat = pd.DataFrame([dict(row="TopK SAE", step=t, seed=s, F1=0.5, MCC=0.5) for t in steps for s in (0, 1)])
    v = transfer.absorption_verdict(edges, ctrl, judged, flat, 1e-3, 48)
    assert v.verdict == "transfers" and v.numbers["absorbed"] == 1 and v.numbers["hier"] == pytest.approx(0.5)
    judged["status"] = "not converged"
    assert transfer.absorption_verdict(edges, ctrl, judged, flat, 1e-3, 48).verdict == "inconclusive"
