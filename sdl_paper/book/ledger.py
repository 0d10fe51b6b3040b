"""The claims ledger: one row per claim of the paper, with the verdict and decisive number glued by its chapter.

Each chapter that tests a claim calls :func:`record` once per claim it owns; the book's "Claims and verdicts" page
(``book/ledger.md``, written by :func:`render` and checked by a test) pastes the glued values across documents, so a
changed result changes the ledger. Claims no chapter tests yet carry ``chapter=None`` and a fixed verdict.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..studies.verdicts import VERDICTS, Verdict  # noqa: F401 (re-exported: ledger.VERDICTS)


@dataclass(frozen=True)
class Claim:
    key: str             # glue keys are verdict_<key> and number_<key>
    result: str          # the paper's label, e.g. "Thm 3.1"
    statement: str       # the paper's statement in one line (our paraphrase)
    chapter: str | None  # chapter (notebooks/<chapter>.md) that certifies it; None: no chapter yet
    label: str | None    # MyST label of the certifying section
    verdict: str = ""    # only for chapter=None: the fixed verdict


_CLAIMS = [
    Claim("sigma_keep_zero", "Sec. 2", "Every activation used (ReLU, JumpReLU, TopK, BatchTopK, compositions) "
          "satisfies sigma(z)_i in {0, z_i}.", "framework", "framework-activations"),
    Claim("unified", "Sec. 2", "SAE, tied SAE, transcoder and crosscoder are instances of one SDL problem.",
          "framework", "framework-instantiations"),
    Claim("thm3_1", "Thm 3.1", "If C = sup_s ||x_r - W_D sigma(W_E x_p)||^2 < inf and (1 - S) <= 1/n then "
          "|L_SDL - L~| <= n^2 C (1 - S)^2.",
          "loss_approximation", "loss-approx-bound"),
    Claim("thm3_1_jumprelu", "Thm 3.1", "The same bound for JumpReLU SAEs (the paper lists JumpReLU among its "
          "activations).", "loss_approximation", "loss-approx-jumprelu"),
    Claim("thm3_1_batchtopk", "Thm 3.1", "The same bound for BatchTopK (the paper lists it among its "
          "activations).", "loss_approximation", "loss-approx-batchtopk"),
    Claim("thm3_2_block", "Thm 3.2", "On a region Omega_P, L~ is convex in W_D for fixed W_E and in W_E for "
          "fixed W_D.", "biconvexity", "biconvexity-block"),
    Claim("thm3_2_joint", "Thm 3.2 (stated, not proved)", "L~ is not jointly convex on a region (the piecewise "
          "biconvexity the paper proves is block-wise).", "biconvexity",
          "biconvexity-joint"),
    Claim("thm3_2_across", "Thm 3.2 (stated, not proved)", "L~ is not convex across regions.", "biconvexity",
          "biconvexity-across"),
    Claim("thm3_2_lsdl", "Abstract (v4)", "All SDL variants are 'a single piecewise biconvex optimization "
          "problem': read for the true loss, L_SDL is convex in W_E on a region (Thm 3.2 proves it for L~ only).",
          "biconvexity", "biconvexity-lsdl"),
    Claim("thm3_2_literal_topk", "Thm 3.2, eq. 7", "The theorem with the paper's literal TopK (negatives may be "
          "kept) and F_i defined by '> 0'.", "biconvexity", "biconvexity-literal-topk"),
    Claim("thm3_3", "Thm 3.3", "With n_q >= n and any sigma of the class, the ground-truth dictionary has "
          "L~ <= n^2 M^2 sum_d M_d.",
          "global_minima", "global-minima-bound"),
    Claim("thm3_3_global", "Thm 3.3 (our reading)", "The ground-truth dictionary of Thm 3.3 is a global minimum of "
          "L~ (a reading we test, not the paper's claim: the theorem only bounds its loss).", "global_minima",
          "global-minima-not-global"),
    Claim("thm3_4", "Thm 3.4", "L~ = 0 iff w_r^d = W_D sigma(W_E w_p^d) for every d; with n_q > n there are "
          "zero-loss solutions that recover no ground-truth direction.", "global_minima", "global-minima-zero"),
    Claim("ex3_5", "Ex. 3.5", "A 2-feature Top1 SAE with one polysemantic and one dead neuron is a partial "
          "minimum with L~ = 1.", "spurious_minima", "spurious-example"),
    Claim("thm3_6_construction", "Thm 3.6 (proof)", "The weighted least-squares decoder for any realizing encoder "
          "is a partial minimum.", "spurious_minima", "spurious-construction"),
    Claim("thm3_6", "Thm 3.6", "Every realizable polysemantic partition pattern has a partial minimum of L~ "
          "exhibiting it, with positive loss.", "spurious_minima", "spurious-counterexamples"),
    Claim("dead_zero_grad", "Sec. 3", "Dead neurons (F_i empty) receive exactly zero gradient of L~ (true by "
          "construction: such a neuron enters no term; a certificate of the mechanism, not a test).",
          "spurious_minima", "spurious-dead"),
    Claim("thm3_8", "Thm 3.8", "If the parent-per-neuron pattern is realizable, then for every parent the child "
          "with the smallest activation can be split off to its own neuron and the pattern stays realizable "
          "(hence a spurious partial minimum).",
          "absorption_theory", "absorption-theory-relu"),
    Claim("exp_absorption", "Thm 3.8 (our test)", "Hierarchy produces feature absorption in trained dictionaries "
          "under sparsity pressure (the paper proves absorbed patterns realizable; the training experiment is "
          "ours).", "absorption_experiments", "absorption-exp-verdicts"),
    Claim("exp_dead", "Sec. 3 (dead neurons)", "Dead neurons (empty pattern) get no gradient, so gradient descent "
          "'can become trapped' at them (its blog: 'permanently'); read here as: dead latents stay dead.",
          "dead_neurons", "dead-revival"),
    Claim("exp_resampling", "Fig. 7", "Resampling dead neurons, periodically from 1/6 of training, ends with a "
          "lower loss than no resampling (the figure's spike is reported, not judged).", "resampling",
          "resampling-verdicts"),
    Claim("exp_resampling_llm", "Fig. 7", "The same on a Llama-3.1-8B residual-stream SAE (loss 1.3 vs 1.7).",
          None, None, "not testable here"),
    Claim("lrb_table1", "Table 1", "On the Linear Representation Bench, TopK-family SAEs recover about 84% of "
          "features (M_GT, encoder rows) and ReLU / JumpReLU SAEs 0%.", "lrb", "lrb-verdicts"),
    Claim("lrb_coders", "Table 1", "TopK transcoder 23.6% and crosscoder 56.4% M_GT on the bench.", "lrb", "lrb-verdicts"),
    Claim("anchoring", "Table 1", "Feature anchoring raises M_GT on the bench for the TopK-family rows (e.g. "
          "TopK 84.9% -> 87.6%); ReLU and JumpReLU stay at 0%.", "anchoring", "anchoring-verdicts"),
    Claim("ablation_k", "Ablations", "TopK k = 32 / 64 / 128 gives 100% / 93.9% / 86.7% recovery.", "anchoring", "anchoring-verdicts"),
    Claim("ablation_superposition", "Ablations", "ReLU SAEs recover 0% for n = 800..1400; with anchoring 100% "
          "at n = 800 falling to 8.6% at 1400.", "anchoring", "anchoring-verdicts"),
    Claim("ablation_interference_sparsity", "Ablations", "Interference M in {0.05, 0.2, 0.5} has little "
          "effect; recovery rises with 1 - S to 95-99.7% for the TopK family at 0.1.", "anchoring", "anchoring-verdicts"),
    Claim("tables_metrics", "Tables 1, 2, 4-7", "Each entry is M_GT (share of features with best cosine above "
          "tau = 0.95) and M_IP (mean best cosine) of the same dictionaries.", "anchoring", "anchoring-tables"),
    Claim("table4_vs_table1", "Tables 1, 4", "Table 4's n = 1000 row (ReLU SAE, 100 anchors) is the bench at "
          "Table 1's defaults, so its M_GT with anchoring agrees with Table 1's ReLU row.", "anchoring",
          "anchoring-tables"),
    Claim("table6_label", "Table 6", "The column of the activation-probability ablation is S, the probability "
          "that a feature is inactive (0.005 'very low sparsity', 0.1 'approaching our theoretical regime').",
          "anchoring", "anchoring-tables"),
    Claim("transfer_table1", "Table 1 (transfer, ours)", "The LRB finding that TopK-family SAEs recover features "
          "and ReLU / JumpReLU SAEs do not carries over to a SynthSAEBench-style world (as an order of detection "
          "F1; our test).", "synth_transfer", "transfer-table1"),
    Claim("transfer_anchoring", "Table 1 (transfer, ours)", "Feature anchoring's gain on the non-anchored "
          "features carries over to a SynthSAEBench-style world (the anchoring chapter's rule; our test).",
          "synth_transfer", "transfer-anchoring"),
    Claim("transfer_absorption", "Thm 3.8 (transfer, ours)", "Hierarchy produces absorption and its control does "
          "not on a SynthSAEBench-style world, scored on every edge of its forest (our test).", "synth_transfer",
          "transfer-absorption"),
    Claim("anchoring_clip", "Table 2", "Anchoring with class-mean directions improves recovery on CLIP "
          "embeddings of ImageNet.", None, None, "not testable here"),
    Claim("real_anchoring", "Table 2 (our analogue)", "Our analogue on a digits MLP trained here: anchoring some "
          "of the class-mean directions improves recovery (M_GT, M_IP) of the other classes' directions.",
          "real_activations", "real-anchoring"),
    Claim("real_resampling", "Fig. 7 (our analogue)", "Our analogue on a digits MLP trained here: resampling dead "
          "latents of a ReLU SAE periodically lowers the final loss.",
          "real_activations", "real-resampling"),
]
CLAIMS: dict[str, Claim] = {c.key: c for c in _CLAIMS}
assert len(CLAIMS) == len(_CLAIMS), "duplicate claim key"
assert all((c.chapter is None) == bool(c.verdict) for c in _CLAIMS), "fixed verdicts only for untested claims"
assert all(c.verdict in VERDICTS for c in _CLAIMS if c.verdict)


def claims_of(chapter: str) -> list[str]:
    """Keys of the claims that ``chapter`` must record."""
    return [c.key for c in _CLAIMS if c.chapter == chapter]


def record(key: str, verdict: str | Verdict, number: str | None = None) -> None:
    """Glue the verdict and decisive number (already formatted text) of claim ``key`` for the ledger page; a
    :class:`~sdl_paper.studies.verdicts.Verdict` carries both."""
    from myst_nb import glue

    if isinstance(verdict, Verdict):
        verdict, number = verdict.verdict, verdict.evidence

    if key not in CLAIMS or CLAIMS[key].chapter is None:
        raise KeyError(f"unknown or untested claim {key!r}; chapter claims: "
                       f"{sorted(k for k, c in CLAIMS.items() if c.chapter)}")
    if verdict not in VERDICTS[:-1]:      # a chapter may find a claim untestable at its size, never "not yet tested"
        raise ValueError(f"verdict {verdict!r} is not one of {VERDICTS[:-1]}")
    glue(f"verdict_{key}", verdict, display=False)
    glue(f"number_{key}", number, display=False)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render() -> str:
    """The markdown of book/ledger.md: a table whose verdict and number cells are cross-document glue."""
    rows = ["| the paper says | our verdict (evidence) | decisive number |", "|---|---|---|"]
    for c in _CLAIMS:
        claim = f"**{c.result}.** {_cell(c.statement)}"
        if c.chapter is None:
            rows.append(f"| {claim} | *{c.verdict}* | |")
            continue
        doc = f"../notebooks/{c.chapter}.md"
        verdict = f"{{glue:text}}`{doc}::verdict_{c.key}:s` ({{ref}}`section <{c.label}>`)"
        rows.append(f"| {claim} | {verdict} | {{glue:text}}`{doc}::number_{c.key}:s` |")
    return "\n".join(rows) + "\n"


START, END = "% ledger:start (written by sdl_paper.book.ledger.write; edit the claims there)", "% ledger:end"


def write(path) -> None:
    """Replace the table between the START and END comment lines of ``path`` (book/ledger.md) by :func:`render`."""
    from pathlib import Path

    path = Path(path)
    text = path.read_text()
    head, rest = text.split(START + "\n", 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{START}\n{render()}{END}{tail}")
