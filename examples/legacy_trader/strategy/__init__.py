"""Signal strategies ported from the research notebooks."""
