"""The paper's mathematics: activations, the unified SDL model and its losses (framework), the instantiation
table (methods), the loss approximation, activation regions, partial and global minima, absorption, metrics.
"""
