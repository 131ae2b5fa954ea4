"""The loaded policy and every rule a request must pass: consumers, capabilities,
checks, rate limits."""
