"""The shell: declared commands, the session that runs input lines, completion, output.

Free of any front end: the same session serves the terminal, the browser and tests.
"""
