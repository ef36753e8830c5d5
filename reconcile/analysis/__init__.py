"""Pure analysis over DataFrames: no I/O, no clock (as_of comes in), no rendering."""
