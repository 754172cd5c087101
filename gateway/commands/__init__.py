"""`gateway` sub-commands, one module per capability, registered in gateway/cli.py."""
