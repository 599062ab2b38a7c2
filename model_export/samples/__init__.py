"""The rows a check runs: one array per graph input ("feeds"), with optional targets.

``row_files`` reads them from .csv/.txt/.npy/.npz files, ``drawn`` draws them from what
the card says about the inputs, and ``tokenizer_file`` turns texts into token feeds
through the tokenizer written beside a text model.
"""
