"""Reading and checking the four registers: schema, loading, parsing, consistency checks."""
