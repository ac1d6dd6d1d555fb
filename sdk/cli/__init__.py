"""The ``wdp`` command line."""
