"""synack.apps: adapters between the Exchange contract and application interfaces."""
