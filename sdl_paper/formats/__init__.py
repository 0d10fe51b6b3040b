"""File formats and interop: self-describing safetensors + JSON files (files), SAELens's layout (saelens).
Reading a file never runs code from it (tensors in safetensors, the rest in JSON)."""
