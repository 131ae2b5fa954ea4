"""Request signers wrapped by the auth strategies: AWS SigV4 and HMAC."""
