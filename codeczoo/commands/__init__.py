"""Sub-commands of the codeczoo command line, one module each."""
