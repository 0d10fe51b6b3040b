"""The book and its command line: chapter registry and parameters, runner, renderer, parallel executor, the
claims ledger and the plotting style.
"""
