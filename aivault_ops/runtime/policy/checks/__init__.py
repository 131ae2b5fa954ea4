"""The runtime's request rules, one module per rule family; each fails closed."""
