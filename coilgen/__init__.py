"""coilgen."""
