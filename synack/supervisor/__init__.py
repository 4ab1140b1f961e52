"""synack.supervisor: the pre-fork master — processes and signals only; no event loop, no HTTP."""
