"""The FastAPI app and its routes; see ``sellerbench.server``."""
