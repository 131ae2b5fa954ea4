"""`validate`: load, check secret files, resolve; everything that needs no private key."""
