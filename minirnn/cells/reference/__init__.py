"""The built-in rnn, gru and lstm written in the simple protocol (minirnn/cells/protocol.py):
the equations and nothing else, the reference that the fast modules in minirnn/cells/ are
tested against. Load one with --cell reference/NAME."""
