"""Loading a policy repo: files, YAML with positions, Jinja2, schema checks."""
