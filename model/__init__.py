"""The DBRX-style mixture-of-experts model: pure PyTorch, no distributed code, no I/O."""
