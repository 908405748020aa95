"""Running cases against adapters: the executor (one case), the store and the run loop."""
