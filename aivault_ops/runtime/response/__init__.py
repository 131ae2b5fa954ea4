"""The upstream's answer on its way back: decoding, header filter, blocklist, redaction."""
