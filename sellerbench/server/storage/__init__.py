"""Where the server keeps its data; see ``sellerbench.server``."""
