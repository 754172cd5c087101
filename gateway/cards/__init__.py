"""Chip cards of the medical one-card: the social security card (SSC) and the resident
health card, read through PC/SC (``reader``), and virtual cards for tests (``emulator``)."""
