"""Identity: the master patient index (EMPI) and card status."""
