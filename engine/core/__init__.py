"""The core: policy, risk kernel, exits, the loop and its clocks. It knows no venue and no file format."""
