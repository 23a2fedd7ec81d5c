"""Outputs: the console summary, JSON documents and workbooks."""
