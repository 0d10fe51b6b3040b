"""Studies (layer 5): the experiments behind the chapters, built on the library below: sweeps with batched seeds
(``experiments``), absorption measured in trained SAEs (``absorption_experiments``), the analysis of dead-latent
remedies (``remedies``), the Linear Representation Bench and anchoring (``lrb``), the paper's numbers
(``paper``), every verdict rule (``verdicts``), training curves and the convergence rule (``curves``), and the
longer analyses of the chapters (``theory_pages``, ``dead_latents``, ``absorption_pages``,
``resampling_effects``, ``real_recovery``).
"""
