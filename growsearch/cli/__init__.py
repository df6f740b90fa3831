"""The ``growsearch`` command: its parser, its commands, and what they print."""
