"""Data (layer 0, imports nothing else of the package): synthetic ground truth under the linear representation
hypothesis (``ground_truth``), stored or streamed activations (``arrays``: tensors, iterables of batches,
``.npy`` / ``.safetensors`` files read by rows), and the hidden layer of a digits classifier trained here
(``digits``).
"""
