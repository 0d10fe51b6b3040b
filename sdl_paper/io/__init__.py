"""Files and interop (layer 3): self-describing safetensors + JSON folders (``files``), SAELens's layout
(``saelens``). Reading a file never runs code from it (tensors in safetensors, the rest in JSON).
"""
