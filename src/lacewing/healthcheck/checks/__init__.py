"""The checks themselves, one module per group of categories (declared as data)."""
