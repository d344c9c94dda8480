"""vcpd: a Virtual Cloud Provider daemon for secure multiparty computation.

Nothing here starts anything; importing the package is free of side effects.
"""

__version__ = "0.1.0"
