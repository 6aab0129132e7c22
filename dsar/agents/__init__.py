"""Data Rights Protocol 1.0, Covered Business side: authorised agents' signed requests mapped onto rights requests."""
