"""What the runtime tells about itself: the audit log, metrics, /status."""
