"""smart-suggest: a terminal-first recommendation and A/B-experimentation workbench.

The core (everything under this package except ``smart_suggest.cli``) imports no UI code,
so it can be used as a library.
"""

__version__ = "0.1.0"
