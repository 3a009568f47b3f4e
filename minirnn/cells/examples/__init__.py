"""Cells written in the simple protocol (minirnn/cells/protocol.py) as worked examples:
load one with --cell examples/NAME, or by its path. See docs/own-cell.md."""
