"""Pure logic behind the imperative verbs (`credential create`, `capability create`):
command-line flags → manifest documents, and `--secret-ref` parsing. No I/O."""
