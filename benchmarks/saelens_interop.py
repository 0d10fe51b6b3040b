"""SAELens interop, both ways, checked against SAELens 6.54.12 itself (run in .venv-bench, not in CI):

    .venv-bench/bin/python benchmarks/saelens_interop.py      # writes benchmarks/SAELENS_INTEROP.md

1. Ours -> SAELens: dictionaries trained here (TopK, ReLU with decoder-weighted L1, JumpReLU, all with biases,
   then biases perturbed so that they matter) are exported and loaded by ``SAE.load_from_disk``; codes and
   reconstructions are compared on fresh inputs.
2. SAELens -> ours: SAELens's own TopK (decoder-norm rescaling on), standard and JumpReLU SAEs are trained by its
   ``train_toy_sae`` on OUR ground truth (fixed feature directions, our sampler), saved by
   ``save_inference_model`` and imported; codes and reconstructions are compared, and our decoder MCC is compared
   with SAELens's ``mean_correlation_coefficient`` on the same dictionary.
"""
import tempfile
import time
import warnings
from pathlib import Path

import torch

warnings.filterwarnings("ignore")
import sae_lens  # noqa: E402
from sae_lens.synthetic import FeatureDictionary, mean_correlation_coefficient, train_toy_sae  # noqa: E402

import sdl_paper as sdl  # noqa: E402
from sdl_paper.theory import metrics  # noqa: E402

OUT = Path(__file__).with_name("SAELENS_INTEROP.md")
torch.manual_seed(0)
world = sdl.make_world(n_p=32, n=48, S=0.95, M=0.2, n_layers=1, seed=0)
gt = world.view([0], [0])
x = gt.sample(4096, torch.Generator().manual_seed(99))[1]
tmp = Path(tempfile.mkdtemp())
rows = []


def compare(name, direction, ours, theirs_codes, theirs_recon, extra=""):
    codes = ours.encode(x)
    rows.append(f"| {direction} | {name} | {(codes - theirs_codes).abs().max():.2e} | "
                f"{(ours.decode(codes) - theirs_recon).abs().max():.2e} | "
                f"{(codes != 0).float().sum(1).mean():.2f} | {bool(torch.equal(codes != 0, theirs_codes != 0))} |"
                f" {extra} |")


def trained(source, method, practice="theory", **kw):
    """A dictionary of 96 latents trained on ``source``, biases perturbed so that they matter."""
    kw |= {"k": 3} if method == "topk" else {}
    cfg = getattr(sdl.Config, practice)(method, l1=3e-3, l0=3e-3, bias=True, steps=400, batch_size=256, lr=3e-3,
                                        **kw)
    d = sdl.Dictionary.from_state(sdl.train(source, cfg, 96, [0], progress=False))
    d.params["b_E"] += 0.05 * torch.randn_like(d.params["b_E"])
    d.params["b_D"] += 0.3 * torch.randn_like(d.params["b_D"])
    return d


for method in ("topk", "relu_dec", "jumprelu"):
    d = trained(gt, method)
    sdl.export_saelens(d, tmp / method)
    sae = sae_lens.SAE.load_from_disk(str(tmp / method))
    with torch.no_grad():
        z = sae.encode(x)
        compare(method, f"ours -> SAELens ({type(sae).__name__})", d, z, sae.decode(z))


class OurSampler:
    """Our ground truth's codes, for SAELens's trainer (it calls the generator with a batch size)."""

    def __init__(self):
        self.g = torch.Generator().manual_seed(1)

    def sample(self, n):
        return gt.coefficients.sample(n, self.g)

    __call__ = sample


fd = FeatureDictionary(gt.n, gt.n_p, initializer=None)
fd.feature_vectors.data = gt.W_p.T.clone()                       # (n, n_p): our directions as its rows
kinds = {"topk": sae_lens.TopKTrainingSAE(sae_lens.TopKTrainingSAEConfig(d_in=32, d_sae=96, k=3)),
         "standard": sae_lens.StandardTrainingSAE(sae_lens.StandardTrainingSAEConfig(d_in=32, d_sae=96,
                                                                                     l1_coefficient=3e-3)),
         "jumprelu": sae_lens.JumpReLUTrainingSAE(sae_lens.JumpReLUTrainingSAEConfig(d_in=32, d_sae=96,
                                                                                    l0_coefficient=3e-3))}
for name, sae in kinds.items():
    t0 = time.perf_counter()
    train_toy_sae(sae, fd, OurSampler(), training_samples=100_000, batch_size=256, lr=3e-3)
    sae.save_inference_model(str(tmp / f"theirs_{name}"))
    inf = sae_lens.SAE.load_from_disk(str(tmp / f"theirs_{name}"))
    d = sdl.import_saelens(tmp / f"theirs_{name}")
    ours_mcc = metrics.hungarian_mcc(d.params["W_D"][0], gt.W_r)
    their_mcc = float(mean_correlation_coefficient(inf.W_dec.detach(), gt.W_r.T))
    report = sdl.audit(d, truth=gt)
    with torch.no_grad():
        z = inf.encode(x)
        compare(name, f"SAELens ({type(sae).__name__}) -> ours", d, z, inf.decode(z),
                f"MCC ours {ours_mcc:.4f} / SAELens {their_mcc:.4f}; audit M_GT_dec {report['M_GT_dec']:.3f}, "
                "partial-minimum test refused (biases)" if str(report["partial_minimum"]).startswith("refused")
                else f"partial minimum: {report['partial_minimum']}")

tc_rows = []


def compare_transcoder(name, direction, ours, theirs, xs):
    """Max |difference| of SAELens's encode, decode (of its codes) and forward from ours on inputs ``xs``."""
    with torch.no_grad():
        z, codes = theirs.encode(xs), ours.encode(xs)
        diffs = ((codes - z).abs().max(), (ours.decode(z) - theirs.decode(z)).abs().max(),
                 (ours.decode(codes) - theirs(xs)).abs().max())
    tc_rows.append(f"| {direction} ({type(theirs).__name__}) | {name} | {ours.sizes['n_p']} -> {ours.sizes['n_r']} | "
                   + " | ".join(f"{v:.2e}" for v in diffs) + f" | {(codes != 0).float().sum(1).mean():.2f} | "
                   f"{bool(torch.equal(codes != 0, z != 0))} |")


tc_world = sdl.make_world(n_p=32, n=48, S=0.95, M=0.2, n_layers=2, seed=0).view([0], [1])
x_tc = tc_world.sample(4096, torch.Generator().manual_seed(98))[1]
g = torch.Generator().manual_seed(7)
x_mlp, W_mlp = torch.randn(8192, 32, generator=g), torch.randn(32, 24, generator=g) / 32 ** 0.5
mlp = sdl.as_source(x_mlp[:4096], torch.relu(x_mlp[:4096] @ W_mlp))       # an MLP's input and output
cases = [("relu_dec, theory", tc_world, x_tc, "relu_dec", "theory"),
         ("jumprelu, theory", tc_world, x_tc, "jumprelu", "theory"),
         ("relu_dec, standard (subtract_b_D=False)", mlp, x_mlp[4096:], "relu_dec", "standard"),
         ("jumprelu, standard (subtract_b_D=False)", mlp, x_mlp[4096:], "jumprelu", "standard")]
for name, source, xs, method, practice in cases:
    d = trained(source, method, practice, **({"subtract_b_D": False} if practice == "standard" else {}))
    sdl.export_saelens(d, tmp / f"tc_{len(tc_rows)}")
    compare_transcoder(name, "ours -> SAELens", d, sae_lens.SAE.load_from_disk(str(tmp / f"tc_{len(tc_rows)}")), xs)
try:
    sdl.export_saelens(trained(tc_world, "topk"), tmp / "tc_topk")
    refusal = "NOT refused (wrong)"
except ValueError as e:
    refusal = f"refused, nothing written ({not (tmp / 'tc_topk').exists()}): {e}"
theirs = sae_lens.JumpReLUTranscoder(sae_lens.JumpReLUTranscoderConfig(d_in=32, d_sae=96, d_out=24,
                                                                        apply_b_dec_to_input=False))
with torch.no_grad():
    for p, scale in ((theirs.W_enc, 0.2), (theirs.b_enc, 0.1), (theirs.W_dec, 0.2), (theirs.b_dec, 1.0)):
        p.copy_(scale * torch.randn(p.shape, generator=g))
    theirs.threshold.copy_(0.3 * torch.rand(96, generator=g))
theirs.save_model(tmp / "theirs_tc")
compare_transcoder("jumprelu, random weights", "SAELens -> ours", sdl.import_saelens(tmp / "theirs_tc"),
                   sae_lens.SAE.load_from_disk(str(tmp / "theirs_tc")), x_mlp[4096:])

OUT.write_text(
    "# SAELens interop, checked against SAELens " + sae_lens.__version__ + "\n\n"
    "Written by `.venv-bench/bin/python benchmarks/saelens_interop.py` (CPU). World: n_p = 32, n = 48, M = 0.2,\n"
    "S = 0.95; 96 latents; 4096 fresh inputs. Max |difference| of codes and of reconstructions, mean L0, and\n"
    "whether the sets of active latents agree exactly.\n\n"
    "| direction | kind | codes max diff | reconstruction max diff | L0 | same active set | notes |\n"
    "|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
    "## Transcoders\n\n"
    "A dictionary whose target is not its input is exported as SAELens's transcoder class (`transcoder`,\n"
    "`jumprelu_transcoder`: h = x W_enc + b_enc, b_dec not subtracted from the input, W_dec (d_sae, d_out)),\n"
    "never as an SAE. World transcoder: the world's layer 0 -> layer 1 (n_p = n_r = 32, 4096 fresh inputs);\n"
    "MLP: a random ReLU layer 32 -> 24 (4096 held-out inputs); 96 latents. Max |difference| of codes (encode), of\n"
    "decode on SAELens's codes, and of forward (SAELens's `sae(x)` against our decode(encode(x))).\n\n"
    "| direction | kind | n_p -> n_r | encode max diff | decode max diff | forward max diff | L0 | same active set |\n"
    "|---|---|---|---|---|---|---|---|\n" + "\n".join(tc_rows) + "\n\n"
    f"TopK transcoder (SAELens {sae_lens.__version__} has no TopK transcoder): {refusal}\n")
print(OUT.read_text())
