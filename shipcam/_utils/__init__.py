"""Small utilities every layer may use: atomic writes, progress bars, peak memory."""
